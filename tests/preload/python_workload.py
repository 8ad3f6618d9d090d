"""Allocation-heavy Python workload, run with PYTHONMALLOC=malloc so that every object
goes through the preloaded malloc. It checks its own results (assert) and prints one
digest line, which the driver also compares with a run without hakmem.

Covers: many small objects of many sizes (ints, strs, tuples, dicts, sets), growth by
realloc (lists, bytearrays, str building), large buffers (MiB-sized bytes), objects
created on one thread and freed on another, and mass frees in mixed order."""

import gc
import hashlib
import json
import queue
import random
import sys
import threading

rng = random.Random(1234567)
digest = hashlib.sha256()


def note(*vals):
    digest.update(repr(vals).encode())


def rand_str(n):
    return "".join(chr(97 + rng.randrange(26)) for _ in range(n))


# 1. A dict of many small and medium strings; mutate, verify against a shadow.
table = {}
shadow_len = {}
for i in range(20000):
    k = f"key{i:06d}-{rng.randrange(1 << 30)}"
    n = rng.choice((1, 3, 7, 15, 24, 40, 63, 100, 250, 700, 1500, 4000))
    v = rand_str(min(n, 64)) * (n // min(n, 64) + 1)
    v = v[:n]
    table[k] = v
    shadow_len[k] = n
keys = list(table)
rng.shuffle(keys)
for k in keys[: len(keys) // 2]:  # delete half, in random order
    del table[k]
    del shadow_len[k]
for k, v in table.items():
    assert len(v) == shadow_len[k], (k, len(v), shadow_len[k])
note("dict", len(table), sum(shadow_len.values()))

# 2. Lists that grow and shrink (realloc of the item array), nested containers.
lists = [[] for _ in range(500)]
for step in range(120000):
    lst = lists[step % 500]
    if rng.random() < 0.7 or not lst:
        lst.append((step, str(step), [step] * (step % 5)))
    else:
        lst.pop(rng.randrange(len(lst)))
total = 0
for lst in lists:
    for a, b, c in lst:
        assert str(a) == b and len(c) == a % 5 and all(x == a for x in c)
        total += a
note("lists", sum(map(len, lists)), total)
del lists

# 3. bytearray / str growth through realloc, large buffers.
buf = bytearray()
pieces = []
for i in range(3000):
    chunk = bytes([i % 251]) * (i % 777 + 1)
    buf += chunk
    pieces.append(chunk)
assert bytes(buf) == b"".join(pieces)
big = [bytes([j]) * (1 << 20) * (1 + j % 3) for j in range(12)]  # 12 buffers of 1-3 MiB
for j, b in enumerate(big):
    assert len(b) == (1 << 20) * (1 + j % 3) and b[0] == j and b[-1] == j and b.count(j) == len(b)
note("bytes", len(buf), hashlib.sha256(buf).hexdigest(), sum(map(len, big)))
del big, buf, pieces

# 4. JSON round trip of a nested structure; sets and sorting.
doc = {f"n{i}": {"id": i, "tags": [rand_str(rng.randrange(1, 30)) for _ in range(i % 9)],
                  "v": [rng.random() for _ in range(i % 13)]} for i in range(10000)}
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
assert back == doc
words = {t for d in doc.values() for t in d["tags"]}
ordered = sorted(words)
assert all(ordered[i] < ordered[i + 1] for i in range(len(ordered) - 1))
note("json", len(text), hashlib.sha256(text.encode()).hexdigest(), len(words))
del doc, back, text, words, ordered

# 5. Cross-thread: producers build objects, the main thread checks and frees them;
#    the main thread builds objects that a consumer thread frees.
q_in = queue.Queue(maxsize=256)
q_out = queue.Queue(maxsize=256)
results = {}


def producer(tid):
    r = random.Random(tid)
    for i in range(5000):
        n = r.randrange(1, 2000)
        q_in.put((tid, i, "x" * n, list(range(n % 50))))
    q_in.put(None)


def consumer():
    count = 0
    while True:
        item = q_out.get()
        if item is None:
            break
        s, d = item
        assert len(s) == d["n"] and s == "y" * d["n"]
        count += 1
    results["consumed"] = count


threads = [threading.Thread(target=producer, args=(t,)) for t in range(2)]
cons = threading.Thread(target=consumer)
for t in threads + [cons]:
    t.start()
done = 0
received = 0
while done < len(threads):
    item = q_in.get()
    if item is None:
        done += 1
        continue
    tid, i, s, lst = item
    assert len(lst) == len(s) % 50 and s == "x" * len(s)
    received += 1
    n = (i * 37) % 3000 + 1
    q_out.put(("y" * n, {"n": n}))
q_out.put(None)
for t in threads + [cons]:
    t.join()
assert received == 10000 and results["consumed"] == 10000, (received, results)
note("threads", received, results["consumed"])

# 6. Reference cycles freed by the collector.
class Node:
    def __init__(self, i):
        self.i = i
        self.peer = None
        self.payload = "p" * (i % 300)


ring = [Node(i) for i in range(20000)]
for a, b in zip(ring, ring[1:] + ring[:1]):
    a.peer = b
s = sum(n.peer.i for n in ring)
assert s == sum(range(20000))
del ring, a, b
unreachable = gc.collect()
assert unreachable >= 20000, unreachable
note("gc", s)

print("python-workload-ok", digest.hexdigest())
sys.stdout.flush()
