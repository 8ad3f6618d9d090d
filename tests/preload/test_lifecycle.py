#!/usr/bin/env python3
"""preload.lifecycle: start-up, thread exit and fork under libhakmem.so never hang and
leave no context behind, and the exit report survives a program closing stderr
(lifecycle_probe.c). Each run has HAKMEM_STATS=1 (the report's
atexit handler once deadlocked start-up) and a timeout: a hang is a failure. The exit
report must count one live context, the main thread's."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preload_common as pc  # noqa: E402

MODES = {
    "atexit-table": "a constructor filling glibc's atexit table, then malloc",
    "tls-rounds": "a key destructor that mallocs in each of the 4 destructor rounds",
    # The text report must still reach the caller's stderr (pc.run counts the reports).
    "close-stderr": "an atexit handler that closes stderr before hakmem's report",
    "atfork": "a fork prepare handler, registered before the first malloc, that mallocs",
}


def test(lib, workdir):
    probe = sys.argv[2]
    for mode, what in MODES.items():
        r = pc.run([probe, mode], lib, workdir, env={"PROBE_MODE": mode}, timeout=20)
        pc.expect_equal(r.stdout, f"{mode}-done\n", f"{mode} output")
        pc.expect_equal(r.stats.get("contexts_live"), 1,
                        f"{mode} ({what}): contexts live at exit (only the main thread's)")
    print("lifecycle: no hang, no leaked context")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} /path/to/libhakmem.so /path/to/lifecycle_probe", file=sys.stderr)
        sys.exit(2)
    pc.main(test)
