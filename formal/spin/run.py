#!/usr/bin/env python3
"""Runs the Spin checks of formal/spin/region.pml, one named run at a time.

  run.py NAME [--workdir DIR]   one run; exit 0 when it has the expected outcome
  run.py --list                 the names (ctest adds one test per name)
  run.py --all                  every run, then the figures table (README.md)

Each run: spin -a with the run's -D macros, gcc pan.c with its pan flags, ./pan, and one
line of figures: states stored, depth reached, seconds, errors, the trail's length. A
run that must fail (a bug variant, or a witness for a coverage claim) passes only if
pan reports an error and wrote a .trail.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "region.pml")

# Bounds shared by every run: 3 threads, 2 regions of 2 blocks (region.pml), G = 4
# operations in all (any thread may run all of them), then every thread exits.
BOUNDS = ["-DG=4"]
# Exhaustive search: no bitstate. COLLAPSE compresses the state vector; MEMLIM caps pan
# at 2 GiB. pan.c is compiled with -O0: gcc -O2 takes ~50 s on it and saves ~10% of a
# few seconds' search. Partial-order reduction stays on (no NOREDUCE): the LTL
# properties have no next operator.
SAFETY = ["-DSAFETY", "-DNOCLAIM", "-DCOLLAPSE", "-DMEMLIM=2048"]
LIVENESS = ["-DCOLLAPSE", "-DMEMLIM=2048"]
# Liveness: acceptance cycles under weak fairness, one never claim per run. A bug
# variant's liveness run ignores assertions (-A) so that the property is what fails.
LTL = ["-a", "-f", "-N"]

# name -> (spin -D macros, pan compile flags, pan run flags, expect, what it shows)
# expect: "ok" (no error), "error" (an assertion, with a trail), "cycle" (an acceptance
# cycle, with a trail).
RUNS = {
    "safety-w0": (["-DW=0"], SAFETY, [], "ok", "every assertion, W = 0"),
    "safety-w1": (["-DW=1"], SAFETY, [], "ok", "every assertion, W = 1"),
}
for w in (0, 1):
    for prop in ("remote_collected", "abandoned_released", "frees_complete"):
        RUNS["ltl-%s-w%d" % (prop.replace("_", "-"), w)] = (
            ["-DW=%d" % w], LIVENESS, LTL + [prop], "ok", "%s under weak fairness" % prop)
RUNS.update({
    "bug-write-after-push": (["-DW=1", "-DBUG_WRITE_AFTER_PUSH"], SAFETY, [], "error",
                             "(a) the freer writes the block after the push"),
    "bug-abandon-no-tag": (["-DW=1", "-DBUG_ABANDON_NO_TAG"], SAFETY, [], "error",
                           "(b) orphan_abandon takes the list without closing it"),
    "bug-abandon-no-tag-harm": (["-DW=1", "-DBUG_ABANDON_NO_TAG", "-DNO_TAG_INVARIANT"],
                                SAFETY, [], "error",
                                "(b) without the tag invariant: the harm it causes"),
    "bug-empty-by-active": (["-DW=0", "-DG=5", "-DBUG_EMPTY_BY_ACTIVE"], SAFETY, [], "error",
                            "(b) released while a remote free is in flight"),
    "bug-abandon-no-collect": (["-DW=1", "-DBUG_ABANDON_NO_COLLECT"], SAFETY, [], "error",
                               "(c) the exit forgets the exchanged remote list"),
    "bug-take-keeps-tag": (["-DW=1", "-DBUG_TAKE_KEEPS_TAG"], SAFETY, [], "error",
                           "orphan_take leaves the tag: a remote free takes the locked "
                           "path into an owned region"),
    "bug-no-purge": (["-DW=1", "-DBUG_NO_PURGE"], SAFETY, [], "error",
                     "a warm region's pages given back with blocks in the box"),
    "bug-purge-in-use": (["-DW=1", "-DG=6", "-DBUG_PURGE_IN_USE"], SAFETY, [], "error",
                         "the purge gives back a listed region that is in use again"),
    "bug-pool-purge-no-lock": (["-DW=1", "-DBUG_POOL_PURGE_NO_LOCK"], SAFETY, [], "error",
                               "a pooled region's pages given back without the orphan lock, "
                               "while another thread adopts it"),
    "bug-abandon-no-wait": (["-DW=1", "-DBUG_ABANDON_NO_WAIT"], SAFETY, [], "error",
                            "the exit does not wait for a region's push on its queue"),
    "bug-box-keeps-region": (["-DW=0", "-DBUG_BOX_KEEPS_REGION"], SAFETY, [], "error",
                             "purge_caches drops the box's blocks but keeps box_region (and "
                             "the region's local_head on the box)"),
    "bug-switch-keeps-head": (["-DW=1", "-DBUG_SWITCH_KEEPS_HEAD"], SAFETY, [], "error",
                              "box_set_region leaves the old region's local_head on the "
                              "box: its frees join the box of another region"),
    "bug-queue-every-push": (["-DW=1", "-DBUG_QUEUE_EVERY_PUSH"], SAFETY, [], "error",
                             "every remote push queues the region, not only the one that "
                             "found the list empty"),
    "ltl-bug-abandon-no-collect": (["-DW=1", "-DBUG_ABANDON_NO_COLLECT"], LIVENESS,
                                   ["-A"] + LTL + ["remote_collected"], "cycle",
                                   "remote_collected is not vacuous"),
    "ltl-bug-free-abandoned-no-release": (["-DW=1", "-DBUG_FREE_ABANDONED_NO_RELEASE"],
                                          LIVENESS, ["-A"] + LTL + ["abandoned_released"],
                                          "cycle", "abandoned_released is not vacuous"),
    "ltl-bug-cas-no-reload": (["-DW=1", "-DBUG_CAS_NO_RELOAD"], LIVENESS,
                              ["-A"] + LTL + ["frees_complete"], "cycle",
                              "frees_complete is not vacuous"),
})

# Deeper runs, not in ctest (a minute or more each, 2-3 GiB): run.py NAME or --deep.
DEEP = {
    "deep-safety-w0-g5": (["-DW=0", "-DG=5"], SAFETY[:-1] + ["-DMEMLIM=3500"], ["-w26"], "ok",
                          "every assertion, W = 0, 5 operations"),
    "deep-safety-w1-g5": (["-DW=1", "-DG=5"], SAFETY[:-1] + ["-DMEMLIM=3500"], ["-w26"], "ok",
                          "every assertion, W = 1, 5 operations"),
}


def parse_pan(out):
    f = {}
    m = re.search(r"(\d+) states, stored", out)
    f["states"] = int(m.group(1)) if m else None
    m = re.search(r"depth reached (\d+)", out)
    f["depth"] = int(m.group(1)) if m else None
    m = re.search(r"errors: (\d+)", out)
    f["errors"] = int(m.group(1)) if m else None
    f["incomplete"] = "Search not completed" in out and f["errors"] == 0
    f["memlim"] = "pan: reached -DMEMLIM bound" in out
    m = re.search(r"^pan:\d+: (.*)$", out, re.M)
    f["what"] = m.group(1) if m else ""
    return f


def trail_steps(path):
    with open(path) as fh:
        return sum(1 for line in fh if line.strip() and not line.startswith("-"))


def search(workdir, defs, cflags, pflags):
    """One Spin search in a fresh workdir: spin -a with BOUNDS (a macro of defs overrides
    its BOUNDS default) and defs, gcc pan.c with cflags, ./pan with pflags. Returns the
    spin -D macros used and parse_pan's figures, plus trail (steps, or None), seconds
    (the search) and build (spin and gcc); pan's output is left in workdir/pan.out."""
    os.makedirs(workdir, exist_ok=True)
    for f in os.listdir(workdir):
        if f.startswith("pan") or f.endswith(".trail"):
            os.remove(os.path.join(workdir, f))
    shutil.copy(MODEL, os.path.join(workdir, "region.pml"))
    spin_defs = [d for d in BOUNDS if not any(x.startswith(d.split("=")[0] + "=")
                                              for x in defs)] + defs
    t0 = time.time()
    subprocess.run(["spin", "-a"] + spin_defs + ["region.pml"], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["gcc", "-O0", "-w", "-o", "pan"] + cflags + ["pan.c"], cwd=workdir,
                   check=True)
    t1 = time.time()
    hashw = [] if any(x.startswith("-w") for x in pflags) else ["-w24"]
    p = subprocess.run(["./pan", "-m200000"] + hashw + pflags, cwd=workdir,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    secs = time.time() - t1
    out = p.stdout
    with open(os.path.join(workdir, "pan.out"), "w") as fh:
        fh.write(out)
    f = parse_pan(out)
    trail = os.path.join(workdir, "region.pml.trail")
    f["trail"] = trail_steps(trail) if os.path.exists(trail) else None
    f["seconds"] = secs
    f["build"] = t1 - t0
    return spin_defs, f


def run(name, workdir):
    defs, cflags, pflags, expect, why = {**RUNS, **DEEP}[name]
    spin_defs, f = search(workdir, defs, cflags, pflags)
    ok = True
    problems = []
    if f["states"] is None:
        ok = False
        problems.append("pan printed no statistics")
    if f["incomplete"] or f["memlim"]:
        ok = False
        problems.append("the search did not complete (memory bound)")
    if expect == "ok" and f["errors"] != 0:
        ok = False
        problems.append("pan found an error: %s (trail in %s)" % (f["what"], workdir))
    if expect in ("error", "cycle"):
        ok = ok or f["memlim"]
        if expect == "cycle" and f["errors"] and "acceptance cycle" not in f["what"]:
            ok = False
            problems.append("expected an acceptance cycle")
        if not f["errors"]:
            ok = False
            problems.append("pan found no error: the variant is not refuted")
        elif f["trail"] is None:
            ok = False
            problems.append("pan reported an error but wrote no trail")
    line = ("%-28s %-5s states %10s  depth %5s  %6.1f s  errors %s%s  [%s; %s]" % (
        name, expect, f["states"], f["depth"], f["seconds"], f["errors"],
        ("  trail %d steps" % f["trail"]) if f["trail"] is not None else "",
        " ".join(spin_defs), " ".join(cflags + pflags)))
    print(line)
    if f["what"]:
        print("  pan: " + f["what"])
    for pr in problems:
        print("  FAIL: " + pr)
    sys.stdout.flush()
    return ok, f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name", nargs="?")
    ap.add_argument("--workdir")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--deep", action="store_true", help="the deeper runs, not in ctest")
    a = ap.parse_args()
    if a.list:
        print("\n".join(RUNS))
        return 0
    names = list(RUNS) if a.all else list(DEEP) if a.deep else [a.name]
    if not names or names[0] not in {**RUNS, **DEEP}:
        ap.error("unknown run; --list names them")
    bad = 0
    rows = []
    for n in names:
        wd = a.workdir or os.path.join(os.environ.get("TMPDIR", "/tmp"), "hak-spin", n)
        if (a.all or a.deep) and a.workdir:
            wd = os.path.join(a.workdir, n)
        ok, f = run(n, wd)
        rows.append((n, f))
        bad += not ok
    if a.all or a.deep:
        print("\n| run | expect | states stored | depth | seconds | trail steps |")
        print("|---|---|---:|---:|---:|---:|")
        for n, f in rows:
            print("| %s | %s | %s | %s | %.1f | %s |" % (
                n, {**RUNS, **DEEP}[n][3], f["states"], f["depth"], f["seconds"],
                f["trail"] if f["trail"] is not None else "-"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
