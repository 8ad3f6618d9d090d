#!/usr/bin/env python3
"""preload.entry_points: every malloc-family entry point resolves to libhakmem.so
(entry_probe.c checks with dladdr, uses glibc's __libc_* names, free_sized, malloc_trim,
malloc_info), malloc_stats prints hakmem's text report, and mallinfo2's figures are
the exit report's: arena = os.bytes_mapped, uordblks = bytes_in_blocks, hblkhd =
large_bytes, hblks = large_live (nothing is allocated between the two)."""

import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preload_common as pc  # noqa: E402


def test(lib, workdir):
    probe = sys.argv[2]
    r = pc.run([probe], lib, workdir, min_processes=2)  # malloc_stats, then the exit report
    if not r.stdout.endswith("entry-done\n"):
        pc.fail(f"entry_probe did not finish:\n{r.stdout}\n{r.stderr}")
    m = re.search(r"^mallinfo2 (.*)$", r.stdout, re.M)
    if not m:
        pc.fail(f"entry_probe printed no mallinfo2 line:\n{r.stdout}")
    mi = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}
    st = r.stats
    pc.expect_equal(mi["arena"], st["os"]["bytes_mapped"], "mallinfo2.arena vs os.bytes_mapped")
    pc.expect_equal(mi["uordblks"], st["bytes_in_blocks"], "mallinfo2.uordblks vs bytes_in_blocks")
    pc.expect_equal(mi["fordblks"], st["os"]["bytes_mapped"] - st["bytes_in_blocks"],
                    "mallinfo2.fordblks vs bytes_mapped - bytes_in_blocks")
    pc.expect_equal(mi["hblkhd"], st["large_bytes"], "mallinfo2.hblkhd vs large_bytes")
    pc.expect_equal(mi["hblks"], st["large_live"], "mallinfo2.hblks vs large_live")
    print("entry points: all hakmem's; mallinfo2 agrees with the exit report")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} /path/to/libhakmem.so /path/to/entry_probe", file=sys.stderr)
        sys.exit(2)
    pc.main(test)
