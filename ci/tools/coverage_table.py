#!/usr/bin/env python3
"""coverage_table.py SRC_PREFIX REPORT_DIR SUITE... : a markdown table of line and branch
coverage per file of src/, one column pair per suite (from llvm-cov export -summary-only
JSON files REPORT_DIR/SUITE.json), then the totals."""
import json
import sys


def load(path, prefix):
    with open(path) as f:
        data = json.load(f)["data"][0]
    files = {}
    for fe in data["files"]:
        name = fe["filename"]
        if prefix in name:
            files[name.split(prefix, 1)[1]] = fe["summary"]
    return files, data["totals"]


def pct(s, key):
    c = s[key]
    if c["count"] == 0:
        return "-"
    return f"{100.0 * c['covered'] / c['count']:.1f}"


def main():
    prefix, rdir, suites = sys.argv[1], sys.argv[2], sys.argv[3:]
    per = {s: load(f"{rdir}/{s}.json", prefix) for s in suites}
    names = sorted(set().union(*(per[s][0].keys() for s in suites)))
    head = "| file (src/) | " + " | ".join(f"{s} lines | {s} branches" for s in suites) + " |"
    print(head)
    print("| --- |" + " ---: | ---: |" * len(suites))
    for n in names:
        cells = []
        for s in suites:
            fs = per[s][0].get(n)
            cells += [pct(fs, "lines"), pct(fs, "branches")] if fs else ["0.0", "0.0"]
        print(f"| {n} | " + " | ".join(cells) + " |")
    tot = []
    for s in suites:
        t = per[s][1]
        tot += [f"**{pct(t, 'lines')}** ({t['lines']['covered']}/{t['lines']['count']})",
                f"**{pct(t, 'branches')}** ({t['branches']['covered']}/{t['branches']['count']})"]
    print("| **all of src/** | " + " | ".join(tot) + " |")


if __name__ == "__main__":
    main()
