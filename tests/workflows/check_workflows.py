#!/usr/bin/env python3
"""Checks .github/workflows/ without running GitHub Actions (no runner here).

Every workflow parses and has the keys GitHub requires (on, jobs, runs-on, steps; each step
one of uses / run; actions pinned to a version; ${{ }} balanced, matrix references
defined). ci.yml has one job per stage of ci/test.sh (its matrix equals
`ci/test.sh --list-stages`) and each job runs the stage through `ci/test.sh --stage`.
The ClusterFuzzLite workflows build before they run, use .clusterfuzzlite/'s language and
sanitizers, and between them cover the four modes (code-change, batch, prune, coverage).

--self-test: breaks a copy of the workflows in each of those ways and fails unless every
break is reported (the checker must be able to fail).
"""
import copy
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WF_DIR = os.path.join(ROOT, ".github", "workflows")
CFLITE_MODES = {"code-change", "batch", "prune", "coverage"}


def load_workflows():
    out = {}
    for name in sorted(os.listdir(WF_DIR)):
        if name.endswith((".yml", ".yaml")):
            with open(os.path.join(WF_DIR, name)) as f:
                out[name] = yaml.safe_load(f)
    return out


def stages():
    r = subprocess.run([os.path.join(ROOT, "ci", "test.sh"), "--list-stages"],
                       capture_output=True, text=True, check=True)
    return r.stdout.split()


def project_yaml():
    with open(os.path.join(ROOT, ".clusterfuzzlite", "project.yaml")) as f:
        return yaml.safe_load(f)


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def check(wfs, stage_names, cfl):
    errors = []

    def err(where, msg):
        errors.append(f"{where}: {msg}")

    modes = set()
    for fname, wf in wfs.items():
        if not isinstance(wf, dict):
            err(fname, "not a mapping")
            continue
        # YAML 1.1 reads the key `on` as True.
        trigger = wf.get("on", wf.get(True))
        if not trigger:
            err(fname, "no 'on' trigger")
        if not wf.get("name"):
            err(fname, "no name")
        jobs = wf.get("jobs")
        if not isinstance(jobs, dict) or not jobs:
            err(fname, "no jobs")
            continue
        for jname, job in jobs.items():
            where = f"{fname}: job {jname}"
            if "runs-on" not in job:
                err(where, "no runs-on")
            steps = job.get("steps")
            if not isinstance(steps, list) or not steps:
                err(where, "no steps")
                continue
            matrix = (job.get("strategy") or {}).get("matrix") or {}
            for s in strings(job):
                if s.count("${{") != s.count("}}"):
                    err(where, f"unbalanced expression in {s!r}")
                for ref in re.findall(r"matrix\.([A-Za-z_][\w-]*)", s):
                    if ref not in matrix:
                        err(where, f"matrix.{ref} is not in the job's matrix")
            uses_seen = []
            for i, step in enumerate(steps):
                swhere = f"{where} step {i + 1}"
                if ("uses" in step) == ("run" in step):
                    err(swhere, "needs exactly one of uses / run")
                if "with" in step and "uses" not in step:
                    err(swhere, "'with' without 'uses'")
                if "uses" in step:
                    u = step["uses"]
                    if "@" not in u:
                        err(swhere, f"action {u} is not pinned to a version")
                    uses_seen.append(u.split("@")[0])
                    if u.startswith("google/clusterfuzzlite/actions/"):
                        w = step.get("with") or {}
                        if "language" in w and w["language"] != cfl.get("language"):
                            err(swhere, f"language {w['language']} is not .clusterfuzzlite's "
                                f"{cfl.get('language')}")
                        if "mode" in w:
                            modes.add(w["mode"])
                if "run" in step:
                    for path in re.findall(r"(?:^|\s)((?:ci|fuzz|bench|formal)/[\w./-]+)", step["run"]):
                        full = os.path.join(ROOT, path)
                        if not os.path.isfile(full) or not os.access(full, os.X_OK):
                            err(swhere, f"runs {path}, which is not an executable file")
            b = "google/clusterfuzzlite/actions/build_fuzzers"
            r = "google/clusterfuzzlite/actions/run_fuzzers"
            if r in uses_seen and (b not in uses_seen or uses_seen.index(b) > uses_seen.index(r)):
                err(where, "run_fuzzers without a build_fuzzers step before it")
            for san in matrix.get("sanitizer", []):
                if san not in cfl.get("sanitizers", []):
                    err(where, f"sanitizer {san} is not in .clusterfuzzlite/project.yaml")

    ci = wfs.get("ci.yml")
    if not ci:
        err("ci.yml", "missing")
    else:
        jobs = ci.get("jobs") or {}
        got = []
        runs_stage = False
        for job in jobs.values():
            m = (job.get("strategy") or {}).get("matrix") or {}
            got += list(m.get("stage", []))
            for step in job.get("steps", []):
                if re.search(r"ci/test\.sh --stage \$\{\{ matrix\.stage \}\}", step.get("run", "")):
                    runs_stage = True
        if sorted(got) != sorted(stage_names):
            err("ci.yml", f"stages {got} differ from ci/test.sh --list-stages {stage_names}")
        if not runs_stage:
            err("ci.yml", "no step runs `ci/test.sh --stage ${{ matrix.stage }}`")
    if not CFLITE_MODES <= modes:
        err("cflite", f"modes {sorted(modes)} miss {sorted(CFLITE_MODES - modes)}")
    for f in ("Dockerfile", "build.sh", "project.yaml"):
        if not os.path.isfile(os.path.join(ROOT, ".clusterfuzzlite", f)):
            err(".clusterfuzzlite", f"{f} missing")
    return errors


def self_test(wfs, stage_names, cfl):
    def drop_stage(w):
        w["ci.yml"]["jobs"]["stage"]["strategy"]["matrix"]["stage"].pop()

    def unpinned(w):
        w["ci.yml"]["jobs"]["stage"]["steps"][1]["uses"] = "actions/checkout"

    def no_mode(w):
        for job in w["cflite_cron.yml"]["jobs"].values():
            for s in job["steps"]:
                (s.get("with") or {}).pop("mode", None)

    def run_before_build(w):
        w["cflite_pr.yml"]["jobs"]["PR"]["steps"].reverse()

    def bad_matrix_ref(w):
        w["ci.yml"]["jobs"]["stage"]["steps"][-1]["run"] = "ci/test.sh --stage ${{ matrix.stag }}"

    def missing_script(w):
        w["ci.yml"]["jobs"]["stage"]["steps"][-1]["run"] = "ci/no-such.sh"

    def wrong_language(w):
        w["cflite_batch.yml"]["jobs"]["BatchFuzzing"]["steps"][0]["with"]["language"] = "c"

    def no_runs_on(w):
        del w["cflite_pr.yml"]["jobs"]["PR"]["runs-on"]

    breaks = [drop_stage, unpinned, no_mode, run_before_build, bad_matrix_ref, missing_script,
              wrong_language, no_runs_on]
    missed = []
    for b in breaks:
        w = copy.deepcopy(wfs)
        b(w)
        if not check(w, stage_names, cfl):
            missed.append(b.__name__)
    return missed


def main():
    wfs = load_workflows()
    names = stages()
    cfl = project_yaml()
    errors = check(wfs, names, cfl)
    for e in errors:
        print("workflows:", e)
    if errors:
        return 1
    print(f"workflows: {len(wfs)} files ok ({', '.join(wfs)}); ci.yml stages = {' '.join(names)}")
    if "--self-test" in sys.argv:
        missed = self_test(wfs, names, cfl)
        if missed:
            print("workflows: self-test: breaks not reported:", ", ".join(missed))
            return 1
        print("workflows: self-test: every injected break was reported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
