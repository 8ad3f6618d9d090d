#!/usr/bin/env python3
"""preload.stats_json: the HAKMEM_STATS_JSON report of a program run under libhakmem.so
(stats_probe, which leaves known blocks live at exit; and a real program, sh) is parsed
with the json module: every documented key must exist with the right type, the values
must reflect what the program left live, agree with each other and with the
HAKMEM_STATS=1 text report, and `errors` must count a bad free."""

import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preload_common as pc  # noqa: E402

REGION_KINDS = ("superslab", "ultra", "mid", "large")
INT_KEYS = ("superslabs_live", "superslabs_released", "ultra_segments_live",
            "ultra_segments_released", "mid_live", "mid_released", "large_live",
            "large_released", "large_cached", "active_ultra", "errors")
OS_KEYS = ("maps", "unmaps", "decommits", "bytes_mapped")


def is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_schema(st, what):
    problems = []

    def need_obj(key, subkeys):
        v = st.get(key)
        if not isinstance(v, dict):
            problems.append(f"'{key}' must be an object, got {type(v).__name__}: {v!r}")
            return
        for k in subkeys:
            if not is_count(v.get(k)):
                problems.append(f"'{key}.{k}' must be a non-negative integer, got {v.get(k)!r}")

    need_obj("regions_live", REGION_KINDS)
    need_obj("os", OS_KEYS)
    for k in INT_KEYS:
        if not is_count(st.get(k)):
            problems.append(f"'{k}' must be a non-negative integer, got {st.get(k)!r}")
    ab = st.get("active_blocks")
    if not isinstance(ab, dict) or not ab:
        problems.append(f"'active_blocks' must be a non-empty object, got {ab!r}")
    else:
        sizes = []
        for k, v in ab.items():
            if not re.fullmatch(r"[1-9][0-9]*", k):
                problems.append(f"'active_blocks' key {k!r} is not a class size in bytes")
                continue
            sizes.append(int(k))
            if not is_count(v):
                problems.append(f"'active_blocks.{k}' must be a non-negative integer, got {v!r}")
        if sizes != sorted(set(sizes)):
            problems.append(f"'active_blocks' class sizes are not strictly ascending: {sizes}")
        for s in (8, 16, 32, 64, 128, 256, 512, 1024):
            if s not in sizes:
                problems.append(f"'active_blocks' lacks tiny class {s}")
    if problems:
        pc.fail(f"stats JSON of {what} does not match the documented format:\n  " +
                "\n  ".join(problems) + f"\n{json.dumps(st)[:3000]}")


def parse_text_report(stderr):
    m = re.search(r"^hakmem stats\n((?:  .*\n?)*)", stderr, re.M)
    if not m:
        pc.fail(f"no HAKMEM_STATS=1 report on stderr:\n{stderr[-3000:]}")
    body = m.group(1)

    def grab(pattern):
        mm = re.search(pattern, body, re.M)
        if not mm:
            pc.fail(f"text report lacks /{pattern}/:\n{body}")
        return mm

    ss = grab(r"^  superslabs: (\d+) live, (\d+) released")
    mid = grab(r"^  mid regions: (\d+) live, (\d+) released")
    large = grab(r"^  large runs: (\d+) live, (\d+) released, (\d+) cached")
    ab = grab(r"^  active blocks by class:(.*)$")
    errors = grab(r"^  errors: (\d+)")
    blocks = {k: int(v) for k, v in re.findall(r"(\d+)B=(\d+)", ab.group(1))}
    return {
        "superslabs_live": int(ss.group(1)), "superslabs_released": int(ss.group(2)),
        "mid_live": int(mid.group(1)), "mid_released": int(mid.group(2)),
        "large_live": int(large.group(1)), "large_released": int(large.group(2)),
        "large_cached": int(large.group(3)), "errors": int(errors.group(1)),
        "active_blocks_nonzero": blocks,
    }


def test(lib, workdir):
    probe = sys.argv[2]

    # 1. The probe: known live blocks at exit.
    r = pc.run([probe], lib, workdir)
    pc.expect_equal(r.stdout, "probe-done\n", "probe output")
    st = r.stats
    check_schema(st, "stats_probe")
    ab = st["active_blocks"]
    facts = [
        (ab.get("64", 0) >= 1000, "active_blocks['64'] >= 1000 (1000 live 48-byte blocks)"),
        (ab.get("3072", 0) >= 10, "active_blocks['3072'] >= 10 (10 live 3000-byte blocks)"),
        (st["large_live"] >= 1, "large_live >= 1 (a live 4 MiB block)"),
        (st["regions_live"]["large"] >= 1, "regions_live.large >= 1"),
        (st["regions_live"]["superslab"] >= 1, "regions_live.superslab >= 1"),
        (st["regions_live"]["mid"] >= 1, "regions_live.mid >= 1"),
        (st["superslabs_live"] == st["regions_live"]["superslab"],
         "superslabs_live == regions_live.superslab (two counts of the same regions)"),
        (st["mid_live"] == st["regions_live"]["mid"], "mid_live == regions_live.mid"),
        (st["os"]["maps"] >= st["regions_live"]["superslab"] + st["regions_live"]["mid"] + 1,
         "os.maps covers every live region"),
        (st["os"]["bytes_mapped"] >= (4 << 20) + (2 << 20) * (st["superslabs_live"] + st["mid_live"]),
         "os.bytes_mapped >= 4 MiB large block + 2 MiB per live SUPERSLAB or MID region"),
        (st["errors"] == 0, "errors == 0"),
    ]
    bad = [what for ok, what in facts if not ok]
    if bad:
        pc.fail("stats JSON of stats_probe contradicts what the program left live:\n  " +
                "\n  ".join(bad) + f"\n{json.dumps(st)}")

    # The text report (HAKMEM_STATS=1) of the same process at the same exit must agree.
    text = parse_text_report(r.raw_stderr)
    json_view = {k: st[k] for k in text if k in st}
    json_view["active_blocks_nonzero"] = {k: v for k, v in ab.items() if v}
    for k in ("superslabs_live", "superslabs_released", "mid_live", "large_live", "errors"):
        pc.expect_equal(text[k], json_view[k], f"text report vs. JSON report, '{k}' (same program, same exit)")
    pc.expect_equal(text["active_blocks_nonzero"], json_view["active_blocks_nonzero"],
                    "text report vs. JSON report, active blocks by class")

    # 2. A bad free under HAKMEM_ON_ERROR=report is reported, counted, and survives.
    json_path = os.path.join(workdir, "badfree.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_")}
    env.update(LD_PRELOAD=lib, HAKMEM_ON_ERROR="report", HAKMEM_STATS_JSON=json_path)
    p = subprocess.run([probe, "badfree"], env=env, capture_output=True, text=True, timeout=60)
    if p.returncode != 0 or "badfree-done" not in p.stdout:
        pc.fail(f"probe with a bad free under HAKMEM_ON_ERROR=report failed (status {p.returncode}):\n"
                f"{p.stdout}\n{p.stderr}")
    if not re.search(r"^hakmem: free\(0x[0-9a-f]+\): ", p.stderr, re.M):
        pc.fail(f"bad free was not reported as 'hakmem: free(PTR): REASON' on stderr:\n{p.stderr}")
    st2 = pc.load_stats_json(json_path, "stats_probe badfree")
    check_schema(st2, "stats_probe badfree")
    pc.expect_equal(st2["errors"], 1, "'errors' after one bad free")

    # 3. A real program (the shell running a pipeline) writes a well-formed report too.
    sh = pc.require_program("sh")
    r3 = pc.run([sh, "-c", "for i in 1 2 3; do echo line$i; done | sort -r | tr a-z A-Z"], lib, workdir,
                min_processes=0)  # sort and tr close stderr at exit: only the JSON survives
    pc.expect_equal(r3.stdout, "LINE3\nLINE2\nLINE1\n", "shell pipeline output")
    check_schema(r3.stats, "sh")
    print("stats JSON: schema, contents, text-report agreement and error counting verified")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} /path/to/libhakmem.so /path/to/stats_probe", file=sys.stderr)
        sys.exit(2)
    pc.main(test)
