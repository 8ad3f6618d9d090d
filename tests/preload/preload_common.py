"""Shared helpers for the LD_PRELOAD tests: run a real program under libhakmem.so and
prove that hakmem served it (stats JSON and per-process exit reports) without errors.

Every preloaded command runs with
  LD_PRELOAD=<libhakmem.so>          the library under test
  HAKMEM_ON_ERROR=abort              a bad free kills the program (and the test)
  HAKMEM_STATS=1                     every process that used hakmem prints a report on
                                     stderr at exit: counts how many processes it served
  HAKMEM_STATS_JSON=<fresh path>     the JSON report of the last process to exit
and fails the test if the program exits non-zero, dies on a signal, times out, prints a
`hakmem: ...` error line, or if the reports show no mapped regions or any error.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

SKIP = 77  # SKIP_RETURN_CODE in CMakeLists.txt


class TestFailure(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def skip(msg):
    print(f"SKIP: {msg}", flush=True)
    sys.exit(SKIP)


def require_program(name):
    """Absolute path of `name` on PATH; skips the test if it does not exist."""
    path = shutil.which(name)
    if path is None:
        skip(f"'{name}' is not installed (not on PATH)")
    return path


def main(test_fn):
    """Runs test_fn(lib, workdir) with argv[1] = path of libhakmem.so; turns failures
    into a loud message and exit status 1."""
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} /path/to/libhakmem.so", file=sys.stderr)
        sys.exit(2)
    lib = os.path.abspath(sys.argv[1])
    if not os.path.isfile(lib):
        print(f"FAIL: library under test not found: {lib}", file=sys.stderr)
        sys.exit(1)
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    workdir = tempfile.mkdtemp(prefix=f"hakmem-{name}-")
    ok = False
    try:
        test_fn(lib, workdir)
        ok = True
    except TestFailure as e:
        print(f"\nFAIL [{name}]: {e}", file=sys.stderr, flush=True)
    finally:
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"(work directory kept for inspection: {workdir})", file=sys.stderr)
    if not ok:
        sys.exit(1)
    print(f"PASS [{name}]")


def _tail(text, n=60):
    lines = text.splitlines()
    if len(lines) > n:
        lines = [f"... ({len(lines) - n} lines omitted)"] + lines[-n:]
    return "\n".join(lines)


def _describe_status(rc):
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


# One exit report per process; see src/stats/stats.cc (stats_print).
_REPORT_RE = re.compile(
    r"^hakmem stats\n"
    r"(?:  .*\n)*?"
    r"  superslabs: (?P<ss_live>\d+) live, (?P<ss_rel>\d+) released.*\n"
    r"(?:  .*\n)*?"
    r"  errors: (?P<errors>\d+)$",
    re.M,
)
_ERROR_LINE_RE = re.compile(r"^hakmem: .*$", re.M)


def strip_reports(stderr):
    """stderr without the hakmem exit reports (what the program itself printed)."""
    return _REPORT_RE.sub("", stderr)


class Run:
    """Result of one preloaded command."""

    def __init__(self, cmd, stdout, stderr, stats, reports, raw_stderr=""):
        self.cmd = cmd
        self.raw_stderr = raw_stderr  # with the reports
        self.stdout = stdout
        self.stderr = stderr  # the program's own stderr, hakmem reports removed
        self.stats = stats  # parsed HAKMEM_STATS_JSON object
        self.reports = reports  # list of dicts, one per process that used hakmem


_run_counter = 0


def run(cmd, lib, workdir, *, env=None, cwd=None, stdin=None, preload=True,
        timeout=100, min_processes=1, expect_rc=0):
    """Runs cmd (a list). With preload=True: under hakmem, with all the checks described
    at the top of this file; min_processes is the least number of exit reports expected
    on stderr (0 for programs that close stderr before exit, like coreutils: their report
    is lost, the JSON file still proves hakmem served them). With preload=False: plainly
    (reference runs, and running the programs a preloaded compiler built).
    Returns a Run; stdout/stderr are text."""
    global _run_counter
    _run_counter += 1
    full_env = dict(os.environ)
    # Never inherit hakmem settings or preloads from the caller's environment.
    for k in list(full_env):
        if k.startswith("HAKMEM_") or k == "LD_PRELOAD":
            del full_env[k]
    if env:
        full_env.update(env)
    json_path = os.path.join(workdir, f"stats-{_run_counter}.json")
    if preload:
        full_env.update({
            "LD_PRELOAD": lib,
            "HAKMEM_ON_ERROR": "abort",
            "HAKMEM_STATS": "1",
            "HAKMEM_STATS_JSON": json_path,
        })
    shown = shlex.join(cmd)
    label = "preloaded" if preload else "plain"
    print(f"+ [{label}] {shown}", flush=True)
    # Own process group, so a hang is killed with every process the command started.
    proc = subprocess.Popen(cmd, env=full_env, cwd=cwd or workdir, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(stdin if stdin is not None else "", timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        fail(f"{label} command timed out after {timeout} s (hang?): {shown}\n"
             f"--- stderr (tail) ---\n{_tail(err)}")
    p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    env_shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    repro = (f"  reproduce: cd {shlex.quote(cwd or workdir)} && {env_shown} HAKMEM_STATS=1 "
             f"LD_PRELOAD={shlex.quote(lib)} {shown}" if preload else f"  command: {shown}")
    errs = _ERROR_LINE_RE.findall(p.stderr) if preload else []
    if errs:
        fail(f"hakmem reported errors while running {shown}:\n  " + "\n  ".join(errs[:10]) +
             f"\n{repro}\n--- stderr (tail) ---\n{_tail(p.stderr)}")
    if p.returncode != expect_rc:
        fail(f"{label} command failed with {_describe_status(p.returncode)} "
             f"(expected exit status {expect_rc}): {shown}\n{repro}\n"
             f"--- stdout (tail) ---\n{_tail(p.stdout, 20)}\n"
             f"--- stderr (tail) ---\n{_tail(p.stderr)}")
    if not preload:
        return Run(cmd, p.stdout, p.stderr, None, [])

    reports = [{k: int(v) for k, v in m.groupdict().items()} for m in _REPORT_RE.finditer(p.stderr)]
    if len(reports) < min_processes:
        fail(f"expected at least {min_processes} hakmem exit report(s) on stderr (one per "
             f"process served by hakmem), found {len(reports)}: was LD_PRELOAD honoured?\n"
             f"{repro}\n--- stderr (tail) ---\n{_tail(p.stderr)}")
    bad = [r for r in reports if r["errors"] != 0]
    if bad:
        fail(f"a process served by hakmem counted errors: {bad}\n{repro}")
    if min_processes > 0 and not any(r["ss_live"] + r["ss_rel"] > 0 for r in reports):
        fail(f"no process mapped a tiny (SUPERSLAB) region: hakmem did not serve allocations\n{repro}")
    stats = load_stats_json(json_path, shown)
    check_served(stats, shown)
    return Run(cmd, p.stdout, strip_reports(p.stderr), stats, reports, p.stderr)


def load_stats_json(path, what):
    if not os.path.exists(path):
        fail(f"HAKMEM_STATS_JSON file {path} was not written by {what}: "
             "was hakmem loaded, and did the program exit normally?")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"HAKMEM_STATS_JSON output of {what} is not valid JSON ({e}):\n{text[:2000]}")
    if not isinstance(obj, dict):
        fail(f"HAKMEM_STATS_JSON output of {what} is not a JSON object: {text[:500]}")
    return obj


def check_served(stats, what):
    """The JSON proves hakmem mapped memory for the program and saw no errors."""
    for key in ("superslabs_live", "superslabs_released", "errors"):
        if not isinstance(stats.get(key), int):
            fail(f"stats JSON of {what} lacks integer '{key}': {stats}")
    if stats["superslabs_live"] + stats["superslabs_released"] <= 0:
        fail(f"stats JSON of {what} shows no tiny (SUPERSLAB) region ever mapped "
             f"(superslabs_live + superslabs_released == 0): hakmem was not in use. {stats}")
    if stats["errors"] != 0:
        fail(f"stats JSON of {what} shows errors = {stats['errors']}")


def expect_equal(actual, expected, what):
    if actual != expected:
        fail(f"{what}: expected {expected!r}, got {actual!r}")
