#!/usr/bin/env python3
"""alloc_heavy: an allocation-heavy Python program for the `real` benchmark workload.

usage: alloc_heavy.py [--scale F] [--seed N]

Run by ci/bench.sh as `bench_real -- python3 -I bench/alloc_heavy.py`, under LD_PRELOAD of
the allocator being measured. Python serves objects up to 512 bytes from its own arenas
(pymalloc), so the allocator mostly sees what is larger: long strings and bytes, list and
dict storage, JSON text, the buffers of joins and sorts. The program mixes those with
lifetimes from immediate to whole-run:

  records  a table of records (dicts of strings, lists, bytes) rebuilt in waves; a random
           part is replaced each wave, the rest lives on (mixed lifetimes)
  json     records serialized to JSON text and parsed back
  text     big texts split into words, counted, sorted, joined, replaced
  buffers  a pool of bytearrays of 16 B..64 KiB replaced at random, some grown in place
  lists    lists grown by append and shrunk by pop, sliced and concatenated

Fixed seed: the same work under every allocator. --scale multiplies the work (1.0: a few
seconds with glibc). Prints one line: `alloc_heavy: scale=... checksum=...`.
"""

import json
import random
import sys


def rand_text(rng, n):
    # Words from a fixed vocabulary so the text has structure (repeated words, splits).
    return " ".join(rng.choice(VOCAB) for _ in range(n))


VOCAB = []


def make_record(rng, i):
    return {
        "id": i,
        "name": "record-%d-" % i + "x" * rng.randrange(4, 1500),
        "tags": [rng.choice(VOCAB) * rng.randrange(1, 40) for _ in range(rng.randrange(1, 30))],
        "payload": bytes(rng.randrange(16, 8192) if rng.random() < 0.9 else rng.randrange(8192, 131072)),
        "attrs": {"k%d" % k: rng.random() for k in range(rng.randrange(4, 120))},
        "note": rand_text(rng, rng.randrange(2, 300)),
    }


def phase_records(rng, waves, size):
    table = [make_record(rng, i) for i in range(size)]
    acc = 0
    for w in range(waves):
        # replace a random third; the rest keeps living
        for _ in range(size // 3):
            j = rng.randrange(size)
            table[j] = make_record(rng, w * size + j)
        acc += sum(len(r["name"]) + len(r["payload"]) + len(r["attrs"]) for r in table)
        # a derived index that dies at the end of the wave
        index = {}
        for r in table:
            for t in r["tags"]:
                index.setdefault(t[:8], []).append(r["id"])
        acc += len(index)
    return acc


def phase_json(rng, rounds, size):
    acc = 0
    for r in range(rounds):
        recs = []
        for i in range(size):
            recs.append({
                "id": i,
                "name": rand_text(rng, rng.randrange(1, 60)),
                "values": [rng.random() for _ in range(rng.randrange(0, 200))],
                "children": [{"k": rand_text(rng, 3), "v": rng.randrange(1000)} for _ in range(rng.randrange(0, 20))],
            })
        text = json.dumps(recs)
        back = json.loads(text)
        acc += len(text) + sum(len(x["values"]) for x in back)
    return acc


def phase_text(rng, rounds, words):
    acc = 0
    for r in range(rounds):
        text = rand_text(rng, words)
        parts = text.split()
        counts = {}
        for p in parts:
            counts[p] = counts.get(p, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        lines = [" ".join(parts[i:i + rng.randrange(5, 80)]) for i in range(0, len(parts), 40)]
        joined = "\n".join(sorted(lines))
        replaced = joined.replace("e", "EE").upper()
        acc += len(ranked) + len(replaced) + len(lines)
    return acc


def phase_buffers(rng, ops, slots):
    pool = [None] * slots
    acc = 0
    for i in range(ops):
        j = rng.randrange(slots)
        c = rng.random()
        if c < 0.7:
            n = rng.randrange(16, 1024)
        elif c < 0.95:
            n = rng.randrange(1024, 16384)
        else:
            n = rng.randrange(16384, 65536)
        if pool[j] is not None and c < 0.2:
            pool[j] += bytes(n)  # grown in place (realloc)
            if len(pool[j]) > 262144:
                pool[j] = bytearray(n)
        else:
            pool[j] = bytearray(n)
        pool[j][0] = i & 0xFF
        acc += len(pool[j])
    return acc


def phase_lists(rng, rounds, n):
    acc = 0
    for r in range(rounds):
        lists = [[] for _ in range(64)]
        for i in range(n):
            k = rng.randrange(64)
            if rng.random() < 0.65:
                lists[k].append(i)
            elif lists[k]:
                lists[k].pop()
        merged = []
        for lst in lists:
            merged = merged + lst[: len(lst) // 2]  # a fresh list every time
        acc += len(merged) + sum(len(lst) for lst in lists)
    return acc


def main():
    scale, seed = 1.0, 20261122
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--scale" and args:
            scale = float(args.pop(0))
        elif a == "--seed" and args:
            seed = int(args.pop(0))
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    rng = random.Random(seed)
    VOCAB.extend("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(1, 12))) for _ in range(5000))

    def s(n):
        return max(1, int(n * scale))

    checksum = 0
    checksum += phase_records(rng, s(6), 3000)
    checksum += phase_json(rng, s(4), 2000)
    checksum += phase_text(rng, s(4), 200000)
    checksum += phase_buffers(rng, s(400000), 4096)
    checksum += phase_lists(rng, s(6), 200000)
    print(f"alloc_heavy: scale={scale} checksum={checksum}")


if __name__ == "__main__":
    main()
