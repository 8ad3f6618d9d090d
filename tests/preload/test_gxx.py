#!/usr/bin/env python3
"""preload.gxx: g++ runs under libhakmem.so (the preload reaches the driver and every
tool it starts: cc1plus, as, collect2, ld) compiling and linking gxx_program.cc at -O2.
The program is then run WITHOUT hakmem and its output checked against values computed
here, so a compiler whose data hakmem corrupted would be caught by wrong code or output."""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preload_common as pc  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gxx_program.cc")
# gxx_program.cc's kText
TEXT = ("the quick brown fox jumps over the lazy dog the dog barks and the fox runs "
        "a quick brown dog jumps over a lazy fox while the lazy dog sleeps")


def expected_output():
    freq = {}
    for w in TEXT.split():
        freq[w] = freq.get(w, 0) + 1
    by_count = sorted(sorted(freq.items()), key=lambda kv: -kv[1])  # stable, like the C++
    words = f"words {len(freq)} " + " ".join(f"{k}={v}" for k, v in by_count[:5])
    a, b = 0, 1
    for _ in range(90):
        a, b = b, a + b
    sieve = bytearray([1]) * 100000
    sieve[0] = sieve[1] = 0
    for i in range(2, 317):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, 100000, i)))
    primes = [i for i in range(100000) if sieve[i]]
    series = sum(i * (i + 1) for i in range(1, 1001))
    groups = {}
    for i in range(5000):
        groups.setdefault(f"g{i % 37}", []).append(i)
    sizes = sorted((len(v), k) for k, v in groups.items())
    return "\n".join([
        words,
        f"fib90 {a}",
        f"primes {len(primes)} {sum(primes)}",
        f"series {series}",
        f"groups {len(groups)} {sizes[0][1]}:{sizes[0][0]} {sizes[-1][1]}:{sizes[-1][0]} {sum(groups['g36'])}",
    ]) + "\n"


def test(lib, workdir):
    gxx = pc.require_program("g++")
    exe = os.path.join(workdir, "prog")
    # -v would show the sub-commands; the per-process exit reports already prove that
    # hakmem served them: driver, cc1plus, as, collect2 and ld each print one.
    r = pc.run([gxx, "-std=c++17", "-O2", "-Wall", "-o", exe, SRC], lib, workdir, min_processes=4)
    if r.stderr.strip():
        pc.fail(f"g++ printed diagnostics under hakmem:\n{r.stderr}")
    out = pc.run([exe], lib, workdir, preload=False).stdout
    pc.expect_equal(out, expected_output(), "output of the program g++ built under hakmem")
    print(f"g++ under hakmem: {len(r.reports)} processes served, program output correct")


if __name__ == "__main__":
    pc.main(test)
