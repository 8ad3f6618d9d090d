#!/usr/bin/env python3
"""preload.python: CPython with PYTHONMALLOC=malloc (every object through malloc) runs an
allocation-heavy, self-checking workload under libhakmem.so. Its digest must equal the
digest of the same workload without hakmem."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preload_common as pc  # noqa: E402

WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_workload.py")


def test(lib, workdir):
    python = sys.executable or pc.require_program("python3")
    env = {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [python, "-I", WORKLOAD]
    ref = pc.run(cmd, lib, workdir, env=env, preload=False)
    got = pc.run(cmd, lib, workdir, env=env)
    line = got.stdout.strip()
    if not line.startswith("python-workload-ok "):
        pc.fail(f"workload did not report success under hakmem; stdout: {got.stdout!r}")
    pc.expect_equal(line, ref.stdout.strip(), "workload digest under hakmem vs. without")
    # The workload keeps millions of objects alive at times: hakmem must have served them.
    st = got.stats
    if st["superslabs_live"] + st["superslabs_released"] < 2:
        pc.fail(f"too few tiny regions for an allocation-heavy run: {st}")
    print(f"python under hakmem: {line}; {len(got.reports)} process report(s)")


if __name__ == "__main__":
    pc.main(test)
