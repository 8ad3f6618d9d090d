#!/usr/bin/env python3
"""Turns the runs of ci/bench.sh into the markdown report (stdlib only).

usage: report.py META RAW [--png PATH] > latest.md

META: tab-separated lines written by ci/bench.sh
  KEY<TAB>VALUE                                  (date, nproc, cpu, ...)
  alloc<TAB>LABEL<TAB>PRELOAD<TAB>ENV<TAB>SCOPE   one per allocator, in column order
  workload<TAB>NAME<TAB>COMMAND                   one per workload run
RAW: one line per run
  WORKLOAD<TAB>ALLOCATOR<TAB>ROUND<TAB>EXIT<TAB>RESULT-LINE<TAB>HAKMEM-STATS-JSON
--png PATH: also draw grouped bars of each allocator's speed relative to mimalloc (glibc
  when mimalloc did not run) per workload, with matplotlib (Debian: python3-matplotlib).
  Without matplotlib: a warning on stderr, no chart, the report is still written. The
  report links the chart by its file name.
"""

import json
import os
import statistics
import sys

RATIO_NOTE = (
    "Median of the rounds; range = slowest..fastest round. Ratios divide this allocator's median "
    "throughput by the peer's: above 1 is faster than the peer. RSS in KiB (whole process, median of "
    "the rounds): start = before the loop, peak = high-water mark, after free = once every block is freed."
)
THROUGHPUT_NOTE = "Mops/s = million malloc+free pairs per second in the operations loop. " + RATIO_NOTE
PHASE76_NOTE = (
    "1M malloc(16), then free all in allocation order. RSS in KiB (whole process, median of the "
    "rounds); kept = after free - start. hakmem regions: live regions (all kinds) at start, with "
    "everything allocated, and after the free (asked in-process through hak_stats_print); "
    "at exit: HAKMEM_STATS_JSON written when the process ends."
)

TINY_CHURN_NOTE = (
    "ns/pair = nanoseconds per malloc(16)+free (1000 / Mops/s). One more 16-byte block stays live "
    "throughout (--keep 1), so the block's page never empties: the allocator's fast path."
)
PRODCONS_NOTE = (
    "Mops/s = million blocks per second: the producer thread mallocs (16 B..256 KiB, weighted to "
    "small), the consumer thread frees (every free is remote); from the first malloc until the consumer "
    "has freed the last block. RSS after free = once everything is freed and the consumer has exited."
)
SERVER_NOTE = (
    "Mops/s = million operations per second over both threads; an operation replaces one object "
    "(free + malloc of 16..4096 B); every 64 operations a thread hands 16 objects of mixed lifetimes "
    "to the other, which frees them later. RSS after free = once both threads freed everything and "
    "exited."
)
LARGE_CHURN_NOTE = (
    "kops/s = thousand operations per second over all threads; an operation frees a random block of "
    "the thread's working set and mallocs one of 64 KiB..8 MiB (log-uniform), writing every page. "
    "Per CPU s = thousand operations per CPU second of the process (user + system): on a loaded "
    "machine it moves less than the wall clock. Peak RSS matters beside speed: an allocator can buy "
    "speed by keeping freed pages."
)
REAL_NOTE = (
    "Wall seconds of the whole program (median of the rounds; lower is better); speed = the peer's "
    "median seconds divided by this allocator's: above 1 is faster than the peer. user/sys = CPU "
    "seconds of the program; peak RSS = its high-water mark (KiB)."
)
GROW_NOTE = (
    "One thread fills the heap with 16-byte blocks and keeps them all. first / last ns = "
    "nanoseconds per malloc over the first / last 16 MiB of blocks (median of the rounds); "
    "last/first = their ratio (1 is flat: no cost that grows with the heap; target <= 1.1). "
    "CPU ns: the same in the thread's CPU time (page faults included; not inflated by other jobs "
    "on a loaded machine). Mops/s = million mallocs per second over the whole fill."
)
TIME_WORKLOADS = ("real", "phase76")  # seconds, lower is better


def parse_result(line):
    """'RESULT k=v k=v ...' -> dict, numbers converted."""
    out = {}
    for tok in line.split()[1:]:
        if "=" not in tok:
            continue
        k, v = tok.split("=", 1)
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def read_meta(path):
    meta, allocs, workloads = {}, [], []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "alloc":
                allocs.append({"label": parts[1], "preload": parts[2], "env": parts[3], "scope": parts[4]})
            elif parts[0] == "workload":
                workloads.append({"name": parts[1], "cmd": parts[2]})
            elif len(parts) >= 2:
                meta[parts[0]] = parts[1]
    return meta, allocs, workloads


def read_runs(path):
    """-> {(workload, allocator): {"ok": [result dicts], "failed": n}}"""
    runs = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (6 - len(parts))
            wl, label, _round, rc, result, stats = parts[:6]
            entry = runs.setdefault((wl, label), {"ok": [], "failed": 0})
            if rc != "0" or not result.startswith("RESULT "):
                entry["failed"] += 1
                continue
            r = parse_result(result)
            if stats:
                try:
                    r["_json"] = json.loads(stats)
                except ValueError:
                    pass
            entry["ok"].append(r)
    return runs


def median(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def fmt_int(v):
    return "–" if v is None else f"{round(v):,}".replace(",", " ")


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def hakmem_errors(rows):
    return sum(r.get("_json", {}).get("errors", 0) for r in rows)


def medians(wl, allocs, runs, key):
    """-> {allocator label: median of `key` over its good runs of workload wl}."""
    med = {}
    for a in allocs:
        e = runs.get((wl, a["label"]))
        if e and e["ok"]:
            med[a["label"]] = median(e["ok"], key)
    return med


def allocator_section(wl, allocs, runs, header, row_cells):
    """One row per allocator that ran wl: name, then row_cells(label, good runs) (a FAILED
    row when none succeeded); notes for hakmem's reported errors."""
    rows, notes = [], []
    for a in allocs:
        e = runs.get((wl, a["label"]))
        if not e:
            continue
        ok = e["ok"]
        name = a["label"] + (f" ({e['failed']} failed)" if e["failed"] else "")
        if not ok:
            rows.append([name, "FAILED"] + ["–"] * (len(header) - 2))
            continue
        rows.append([name] + row_cells(a["label"], ok))
        if hakmem_errors(ok):
            notes.append(f"{a['label']}: hakmem reported {hakmem_errors(ok)} errors (stats JSON)")
    return table(header, rows), notes


def throughput_section(wl, allocs, runs, ns=False, key="mops", unit="Mops/s", cpu=False):
    med = medians(wl, allocs, runs, key)

    def cells(label, ok):
        m = med[label]
        lo, hi = min(r[key] for r in ok), max(r[key] for r in ok)
        row = [f"{m:.1f}", f"{lo:.1f}..{hi:.1f}"]
        if ns:
            row.append(f"{1000 / m:.2f}" if m else "–")
        if cpu:
            per_cpu = [r["ops"] / r["cpu_seconds"] / 1e3 for r in ok if r.get("cpu_seconds")]
            row.append(f"{statistics.median(per_cpu):.1f}" if per_cpu else "–")
        delayed = [fmt_int(median(ok, "rss_delayed_kb"))] if has_delayed else []
        return row + [
            fmt_ratio(m, med.get("mimalloc")), fmt_ratio(m, med.get("glibc")),
            fmt_int(median(ok, "rss_start_kb")), fmt_int(median(ok, "peak_rss_kb")),
            fmt_int(median(ok, "rss_after_kb"))] + delayed + [len(ok)]

    has_delayed = any("rss_delayed_kb" in r for a in allocs
                      for r in (runs.get((wl, a["label"])) or {}).get("ok", []))
    header = ["allocator", unit, "range"] + (["ns/pair"] if ns else []) + (["per CPU s"] if cpu else []) + [
        "vs mimalloc", "vs glibc", "RSS start", "peak RSS", "RSS after free"] + (
        ["RSS after the delay"] if has_delayed else []) + ["runs"]
    return allocator_section(wl, allocs, runs, header, cells)


def real_section(wl, allocs, runs):
    med = medians(wl, allocs, runs, "seconds")

    def cells(label, ok):
        secs = med[label]
        lo, hi = min(r["seconds"] for r in ok), max(r["seconds"] for r in ok)
        user, sys_s = median(ok, "user_seconds"), median(ok, "sys_seconds")
        return [
            f"{secs:.2f}", f"{lo:.2f}..{hi:.2f}",
            fmt_ratio(med.get("mimalloc"), secs), fmt_ratio(med.get("glibc"), secs),
            "–" if user is None else f"{user:.2f}", "–" if sys_s is None else f"{sys_s:.2f}",
            fmt_int(median(ok, "peak_rss_kb")), len(ok),
        ]

    header = ["allocator", "seconds", "range", "speed vs mimalloc", "speed vs glibc", "user s", "sys s",
              "peak RSS", "runs"]
    return allocator_section(wl, allocs, runs, header, cells)


def relative_speeds(workloads, allocs, runs):
    """-> (baseline label, {workload: {allocator: speed relative to the baseline}})."""
    labels = {a["label"] for a in allocs}
    base = "mimalloc" if "mimalloc" in labels else "glibc"
    out = {}
    for w in workloads:
        name = w["name"]
        key = "seconds" if name.startswith(TIME_WORKLOADS) else "mops"
        med = {lab: v for lab, v in medians(name, allocs, runs, key).items() if v}
        if base not in med:
            continue
        if key == "seconds":
            out[name] = {lab: med[base] / v for lab, v in med.items()}
        else:
            out[name] = {lab: v / med[base] for lab, v in med.items()}
    return base, out


def draw_chart(path, workloads, allocs, runs, meta):
    """Grouped bars, one group per workload; returns True when the PNG was written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"report: WARNING: no chart ({e}; Debian: apt-get install python3-matplotlib)", file=sys.stderr)
        return False
    base, rel = relative_speeds(workloads, allocs, runs)
    names = [w["name"] for w in workloads if w["name"] in rel]
    if not names:
        print("report: WARNING: no chart (no workload has a baseline figure)", file=sys.stderr)
        return False
    labels = [a["label"] for a in allocs if any(a["label"] in rel[n] for n in names)]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(8, 1.5 * len(names) + 2), 5))
    cmap = plt.get_cmap("tab10")
    for i, lab in enumerate(labels):
        xs = [k + (i - (len(labels) - 1) / 2) * width for k, n in enumerate(names) if lab in rel[n]]
        ys = [rel[n][lab] for n in names if lab in rel[n]]
        bars = ax.bar(xs, ys, width, label=lab, color=cmap(i % 10))
        for b, y in zip(bars, ys):
            ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel(f"speed relative to {base} (higher is better)")
    ax.set_title(f"hakmem benchmarks, {meta.get('date', '?')}, commit {meta.get('commit', '?')}\n"
                 f"throughput (real, phase76: 1 / time) relative to {base}; median of "
                 f"{meta.get('repeats', '?')} rounds", fontsize=9)
    ax.set_ylim(0, max(max(v.values()) for v in rel.values()) * 1.12)
    ax.legend(fontsize=8, ncol=min(len(labels), 4), loc="upper center", bbox_to_anchor=(0.5, -0.07),
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def phase76_section(wl, allocs, runs):
    def cells(label, ok):
        start, peak, after, delayed = (median(ok, k) for k in (
            "rss_start_kb", "rss_peak_kb", "rss_after_kb", "rss_delayed_kb"))
        hwm = median(ok, "peak_rss_kb")
        if hwm is not None and peak is not None:
            peak = max(peak, hwm)
        secs = median(ok, "seconds")
        regions = "–"
        if median(ok, "hak_regions_start") is not None:
            regions = " / ".join(fmt_int(median(ok, k)) for k in ("hak_regions_start", "hak_regions_peak", "hak_regions_after"))
            released = fmt_int(median(ok, "hak_superslabs_released"))
        else:
            released = "–"
        at_exit = "–"
        js = [r["_json"] for r in ok if "_json" in r]
        if js:
            live = statistics.median(sum(j.get("regions_live", {}).values()) for j in js)
            ss_live = statistics.median(j.get("superslabs_live", 0) for j in js)
            ss_rel = statistics.median(j.get("superslabs_released", 0) for j in js)
            at_exit = f"{fmt_int(live)} regions, {fmt_int(ss_live)} superslabs live, {fmt_int(ss_rel)} released"
        return [
            f"{secs * 1000:.1f}" if secs is not None else "–",
            fmt_int(start), fmt_int(peak), fmt_int(after),
            fmt_int(None if after is None or start is None else after - start),
            fmt_int(delayed),
            fmt_int(None if delayed is None or start is None else delayed - start),
            regions, released, at_exit,
        ]

    header = ["allocator", "alloc+free ms", "RSS start", "RSS peak", "RSS after free", "kept",
              "RSS after the delay", "kept after the delay",
              "hakmem regions start / peak / after", "superslabs released", "hakmem at exit (JSON)"]
    return allocator_section(wl, allocs, runs, header, cells)


def grow_section(wl, allocs, runs):
    def fmt(v, spec):
        return "–" if v is None else format(v, spec)

    def cells(label, ok):
        lo, hi = min(r["ratio"] for r in ok), max(r["ratio"] for r in ok)
        return [
            fmt(median(ok, "first_ns"), ".2f"), fmt(median(ok, "last_ns"), ".2f"),
            fmt(median(ok, "ratio"), ".2f"), f"{lo:.2f}..{hi:.2f}",
            fmt(median(ok, "first_cpu_ns"), ".2f"), fmt(median(ok, "last_cpu_ns"), ".2f"),
            fmt(median(ok, "cpu_ratio"), ".2f"),
            fmt(median(ok, "mops"), ".1f"), fmt_int(median(ok, "peak_rss_kb")), len(ok),
        ]

    header = ["allocator", "first ns/malloc", "last ns/malloc", "last/first", "range",
              "first CPU ns", "last CPU ns", "CPU last/first", "Mops/s", "peak RSS", "runs"]
    return allocator_section(wl, allocs, runs, header, cells)


def command_prefix(a):
    parts = []
    if a["preload"]:
        parts.append(f"LD_PRELOAD={a['preload']}")
    if "libhakmem" in a["preload"]:
        parts.append("HAKMEM_STATS_JSON=<tmpfile>")
    if a["env"]:
        parts.append(a["env"])
    return " ".join(parts) or "(no preload)"


def main():
    args = sys.argv[1:]
    png = None
    if "--png" in args:
        i = args.index("--png")
        if i + 1 >= len(args):
            sys.exit(__doc__)
        png = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    meta, allocs, workloads = read_meta(args[0])
    runs = read_runs(args[1])
    chart = bool(png) and draw_chart(png, workloads, allocs, runs, meta)
    out = ["# hakmem benchmarks", ""]
    out.append(f"- date: {meta.get('date', '?')}")
    out.append(f"- machine: {meta.get('nproc', '?')} cpus, {meta.get('cpu', '?')}, {meta.get('memory', '?')}, {meta.get('kernel', '?')}")
    out.append(f"- hakmem commit: {meta.get('commit', '?')}; compiler: {meta.get('compiler', '?')}")
    out.append(f"- peers: {meta.get('versions', '?')}")
    env = meta.get("hakmem_env", "").strip()
    out.append(f"- HAKMEM_* in the environment: {env if env else 'none'}")
    out.append(f"- {meta.get('repeats', '?')} rounds, interleaved (each round runs every allocator once, "
               f"in an order rotated by one each round); medians; {meta.get('elapsed', '?')} s of runs")
    if meta.get("load"):
        out.append(f"- load average (1 min): {meta['load']} (other work on the machine widens the ranges)")
    out.append("")
    if chart:
        base, _ = relative_speeds(workloads, allocs, runs)
        out += [f"![speed relative to {base} per workload]({os.path.basename(png)})", ""]
    all_notes = []
    for w in workloads:
        out.append(f"## {w['name']}")
        out.append("")
        out.append(f"`{w['cmd']}`")
        out.append("")
        if w["name"].startswith("phase76"):
            t, notes = phase76_section(w["name"], allocs, runs)
            note = PHASE76_NOTE
        elif w["name"].startswith("grow"):
            t, notes = grow_section(w["name"], allocs, runs)
            note = GROW_NOTE
        elif w["name"].startswith("real"):
            t, notes = real_section(w["name"], allocs, runs)
            note = REAL_NOTE
        elif w["name"].startswith("tiny-churn"):
            t, notes = throughput_section(w["name"], allocs, runs, ns=True)
            note = TINY_CHURN_NOTE + " " + THROUGHPUT_NOTE
        elif w["name"].startswith("prodcons"):
            t, notes = throughput_section(w["name"], allocs, runs)
            note = PRODCONS_NOTE + " " + RATIO_NOTE
        elif w["name"].startswith("large-churn"):
            t, notes = throughput_section(w["name"], allocs, runs, key="kops", unit="kops/s", cpu=True)
            note = LARGE_CHURN_NOTE + " " + RATIO_NOTE
        elif w["name"].startswith("server"):
            t, notes = throughput_section(w["name"], allocs, runs)
            note = SERVER_NOTE + " " + RATIO_NOTE
        else:
            t, notes = throughput_section(w["name"], allocs, runs)
            note = THROUGHPUT_NOTE
        out += [t, "", note, ""]
        all_notes += [f"{w['name']}: {n}" for n in notes]
    if all_notes:
        out += ["## Warnings", ""] + [f"- {n}" for n in all_notes] + [""]
    out += ["## Commands", "", f"Runner: `{meta.get('invocation', 'ci/bench.sh')}` (from the repository root).", "",
            "Each run is `[VAR=VALUE ...] WORKLOAD-COMMAND` with, per allocator:", ""]
    for a in allocs:
        scope = "" if a["scope"] == "all" else f" (only {a['scope']})"
        out.append(f"- {a['label']}: `{command_prefix(a)}`{scope}")
    out += ["", "Workloads:", ""]
    for w in workloads:
        out.append(f"- {w['name']}: `{w['cmd']}`")
    out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
