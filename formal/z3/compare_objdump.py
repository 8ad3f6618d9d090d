#!/usr/bin/env python3
"""Compares the machine code of two builds of libhakmem.so function by function.

    formal/z3/compare_objdump.py OLD.so NEW.so [FUNCTION...]

Prints the functions whose instructions differ (addresses, jump targets and rip-relative
displacements normalised away) and how many are identical; with FUNCTION names (as objdump
-C prints them), a diff of each. Used to check that instantiating the arithmetic templates
with NativeWord compiles to the code the plain integers compiled to (formal/z3/README.md).
"""
import difflib
import re
import subprocess
import sys


def functions(path):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", path],
                         capture_output=True, text=True, check=True).stdout
    funcs, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
            continue
        m = re.match(r"^ +[0-9a-f]+:\t(.*)$", line)
        if m and cur:
            ins = re.sub(r"[0-9a-f]+ <", "<", m.group(1))           # jump/call targets
            ins = re.sub(r"0x[0-9a-f]+\(%rip\)", "X(%rip)", ins)  # rip-relative data
            ins = re.sub(r"\+0x[0-9a-f]+>", "+off>", ins)
            ins = re.sub(r"CSWTCH\.\d+", "CSWTCH", ins)           # switch tables' numbering
            ins = re.sub(r"\s+#.*_fini.*", "", ins)
            funcs[cur].append(ins)
    return funcs


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    old, new = functions(sys.argv[1]), functions(sys.argv[2])
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            print(f"differs: {name} ({len(old.get(name, []))} -> {len(new.get(name, []))} instructions)")
    same = sum(1 for name in old if old.get(name) == new.get(name))
    print(f"{same} of {len(old)} functions identical")
    for name in sys.argv[3:]:
        print(f"===== {name}")
        for line in difflib.unified_diff(old.get(name, []), new.get(name, []), lineterm="", n=2):
            print(line)


if __name__ == "__main__":
    main()
