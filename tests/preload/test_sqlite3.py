#!/usr/bin/env python3
"""preload.sqlite3: the sqlite3 CLI under libhakmem.so builds a 100k-row table (one
transaction, pseudo-random text and blobs of many sizes), indexes it, updates and deletes,
vacuums, and answers aggregate queries. Every answer is checked against values computed
here in Python from the same data."""

import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preload_common as pc  # noqa: E402

ROWS = 100_000


def make_rows():
    rng = random.Random(20240501)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
    rows = []
    for i in range(1, ROWS + 1):
        # Text lengths spread over tiny, mid and a few large sizes.
        n = rng.choice((1, 5, 12, 24, 48, 96, 200, 400)) + rng.randrange(8)
        if i % 997 == 0:
            n = 5000 + rng.randrange(20000)
        txt = "".join(rng.choice(alphabet) for _ in range(min(n, 40)))
        txt = (txt * (n // len(txt) + 1))[:n]
        blob = rng.randbytes(rng.randrange(0, 48))
        rows.append((i, i % 10, rng.randrange(-10**6, 10**6), txt, blob))
    return rows


def sql_text(s):
    return "'" + s.replace("'", "''") + "'"


def test(lib, workdir):
    sqlite3 = pc.require_program("sqlite3")
    rows = make_rows()
    db = os.path.join(workdir, "t.db")

    # Load: one transaction of 100k INSERT statements (the parser and the B-tree both
    # allocate per row), then indexes.
    parts = ["PRAGMA journal_mode=WAL;", "PRAGMA cache_size=-32000;",
             "CREATE TABLE t(id INTEGER PRIMARY KEY, cat INTEGER, n INTEGER, txt TEXT, b BLOB);",
             "BEGIN;"]
    for i, cat, n, txt, blob in rows:
        parts.append(f"INSERT INTO t VALUES({i},{cat},{n},{sql_text(txt)},X'{blob.hex()}');")
    parts += ["COMMIT;", "CREATE INDEX t_txt ON t(txt);", "CREATE INDEX t_cat_n ON t(cat, n);",
              "SELECT 'loaded', count(*) FROM t;"]
    env = {"HOME": workdir}  # no ~/.sqliterc
    load = pc.run([sqlite3, "-batch", "-bail", db], lib, workdir, env=env, stdin="\n".join(parts) + "\n")
    pc.expect_equal(load.stdout.split(), ["wal", "loaded|100000"], "load output")

    # Queries, in a second process over the file written by the first.
    probe_ids = [1, 2, 997, 4242, 50000, 77777, 99991, 100000]
    queries = [
        "SELECT count(*), sum(n), sum(length(txt)), sum(length(b)), min(txt), max(txt) FROM t;",
        "SELECT cat, count(*), sum(n), max(length(txt)) FROM t GROUP BY cat ORDER BY cat;",
        "SELECT count(*) FROM t WHERE txt >= 'm' AND txt < 'n';",  # uses t_txt
        "SELECT id FROM t ORDER BY txt DESC, id LIMIT 5;",
        "SELECT count(*), sum(n) FROM t WHERE cat = 3 AND n > 0;",  # uses t_cat_n
    ] + [f"SELECT id, length(txt), hex(b), substr(txt, 1, 20) FROM t WHERE id = {i};" for i in probe_ids] + [
        "BEGIN;",
        "UPDATE t SET n = n * 2, txt = txt || '#' WHERE cat = 7;",
        "DELETE FROM t WHERE id % 13 = 0;",
        "COMMIT;",
        "VACUUM;",
        "SELECT count(*), sum(n), sum(length(txt)), sum(length(b)) FROM t;",
        "SELECT group_concat(id) FROM (SELECT id FROM t WHERE cat = 7 ORDER BY n DESC, id LIMIT 10);",
        "PRAGMA integrity_check;",
    ]
    got = pc.run([sqlite3, "-batch", "-bail", db], lib, workdir, env=env, stdin="\n".join(queries) + "\n")
    lines = got.stdout.splitlines()

    # Expected values, from the rows themselves.
    exp = []
    exp.append(f"{len(rows)}|{sum(r[2] for r in rows)}|{sum(len(r[3]) for r in rows)}|"
               f"{sum(len(r[4]) for r in rows)}|{min(r[3] for r in rows)}|{max(r[3] for r in rows)}")
    for c in range(10):
        rs = [r for r in rows if r[1] == c]
        exp.append(f"{c}|{len(rs)}|{sum(r[2] for r in rs)}|{max(len(r[3]) for r in rs)}")
    exp.append(str(sum(1 for r in rows if "m" <= r[3] < "n")))
    exp += [str(r[0]) for r in sorted(rows, key=lambda r: (_desc(r[3]), r[0]))[:5]]
    rs = [r for r in rows if r[1] == 3 and r[2] > 0]
    exp.append(f"{len(rs)}|{sum(r[2] for r in rs)}")
    for i in probe_ids:
        r = rows[i - 1]
        exp.append(f"{i}|{len(r[3])}|{r[4].hex().upper()}|{r[3][:20]}")
    after = [(i, cat, n * 2 if cat == 7 else n, txt + "#" if cat == 7 else txt, b)
             for i, cat, n, txt, b in rows if i % 13 != 0]
    exp.append(f"{len(after)}|{sum(r[2] for r in after)}|{sum(len(r[3]) for r in after)}|"
               f"{sum(len(r[4]) for r in after)}")
    top = sorted((r for r in after if r[1] == 7), key=lambda r: (-r[2], r[0]))[:10]
    exp.append(",".join(str(r[0]) for r in top))
    exp.append("ok")

    if lines != exp:
        diff = [f"  line {k + 1}: expected {e!r}\n  {' ' * len(str(k + 1))}       got      {g!r}"
                for k, (e, g) in enumerate(zip(exp, lines)) if e != g]
        pc.fail(f"sqlite3 query results differ from the expected values "
                f"({len(lines)} lines, expected {len(exp)}):\n" + "\n".join(diff[:20]))
    print(f"sqlite3 under hakmem: {len(exp)} result lines match; "
          f"{len(load.reports) + len(got.reports)} process report(s)")


def _desc(s):
    # Sort key for "ORDER BY txt DESC" under BINARY collation (ASCII here).
    return tuple(-ord(ch) for ch in s) + (1,)


if __name__ == "__main__":
    pc.main(test)
