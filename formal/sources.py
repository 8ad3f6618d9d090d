#!/usr/bin/env python3
"""Pins the C++ functions a formal model cites, so a change in src/ is reviewed.

  sources.py MANIFEST [--root DIR]            check: exit 1 naming each drifted function
  sources.py MANIFEST [--root DIR] --update   rewrite the manifest's hashes
  sources.py MANIFEST --selftest              on a scratch copy of the cited files: a
                                              reflow passes, a one-token edit is named

MANIFEST lines: `path function sha256` (path relative to the repository root, `#`
comments and blank lines ignored). The function is found by its definition: the name
followed by `(`, with the body's `{` after the parameter list and its qualifiers (not a
call: a call is followed by `;` or an operator). Its text, from the start of the
declaration's line to the matching `}`, is normalised (comments, string contents kept,
all whitespace removed) and hashed, so a clang-format reflow or a comment edit does not
count as a change, and any token change does. Several definitions of one name in a file
(overloads) are hashed together, in order.
"""
import argparse
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strip_comments(text):
    """Removes // and /* */ comments, keeping string and character literals."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def match_close(text, i, open_c, close_c):
    """Index just past the bracket matching text[i] (== open_c), or -1."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_c:
            depth += 1
        elif text[j] == close_c:
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def find_definitions(code, name):
    """The definitions of `name` in comment-free code: list of source slices."""
    found = []
    for m in re.finditer(r"(?<![\w.>:])" + re.escape(name) + r"\s*\(", code):
        lp = m.end() - 1
        rp = match_close(code, lp, "(", ")")
        if rp < 0:
            continue
        # After the parameters: qualifiers (noexcept, const, override, -> type, attributes)
        # then `{` for a definition; `;`, `,`, `)` or an operator for a call/declaration.
        k = rp
        tail = re.match(r"(\s*(noexcept|const|override|final|HAK_\w+|__attribute__\s*\(\(.*?\)\)|->\s*[\w:<>*&\s]+?))*\s*\{",
                        code[k:], re.S)
        if not tail:
            continue
        lb = k + tail.end() - 1
        rb = match_close(code, lb, "{", "}")
        if rb < 0:
            continue
        # A statement such as `if (x) {` or `while (...) {` is not a definition.
        before = code[max(0, m.start() - 40):m.start()]
        if re.search(r"(^|[^\w])(if|while|for|switch|return)\s*$", before):
            continue
        start = code.rfind("\n", 0, m.start()) + 1
        found.append(code[start:rb])
    return found


def fingerprint(path, name):
    with open(path, encoding="utf-8") as fh:
        code = strip_comments(fh.read())
    defs = find_definitions(code, name)
    if not defs:
        return None
    norm = "".join(re.sub(r"\s+", "", d) for d in defs)
    return hashlib.sha256(norm.encode()).hexdigest()


def read_manifest(path):
    rows = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            body = line.split("#", 1)[0].split()
            if not body:
                rows.append((line, None))
                continue
            if len(body) not in (2, 3):
                sys.exit("%s:%d: expected `path function [sha256]`" % (path, lineno))
            rows.append((line, (body[0], body[1], body[2] if len(body) == 3 else "")))
    return rows


def selftest(manifest, root):
    """Scratch copy of the cited files: reflowing one function and editing its comments
    must pass; changing one token of another must fail, naming exactly that function."""
    import shutil
    import subprocess
    import tempfile
    rows = [r for _, r in read_manifest(manifest) if r]
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted({r[0] for r in rows}):
            os.makedirs(os.path.join(tmp, os.path.dirname(src)), exist_ok=True)
            shutil.copy(os.path.join(root, src), os.path.join(tmp, src))
        # 1. reflow + comment edit of the first function: not a change
        src, fn = rows[0][0], rows[0][1]
        p = os.path.join(tmp, src)
        text = open(p).read()
        i = text.find(fn + "(")
        j = text.find("{", i)
        text = text[:j] + "{  // a new comment\n\n   " + text[j + 1:].replace(";", " ;", 3)
        open(p, "w").write(text)
        me = [sys.executable, os.path.abspath(__file__), manifest, "--root", tmp]
        r = subprocess.run(me, stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print("selftest: a reflow was reported as a change:\n" + r.stdout)
            return 1
        # 2. one token of free_remote (or the last function): a change
        victim = [x for x in rows if x[1] == "free_remote"] or rows[-1:]
        src, fn = victim[0][0], victim[0][1]
        p = os.path.join(tmp, src)
        text = open(p).read()
        i = text.find(fn + "(")
        k = text.find("fetch_add(1", i)
        if k < 0:
            k = text.find("return", i)
            text = text[:k] + "return;" + text[k + 6:]
        else:
            text = text[:k] + "fetch_add(2" + text[k + len("fetch_add(1"):]
        open(p, "w").write(text)
        r = subprocess.run(me, stdout=subprocess.PIPE, text=True)
        print(r.stdout, end="")
        lines = [l for l in r.stdout.splitlines() if " changed; " in l]
        if r.returncode == 0 or len(lines) != 1 or not lines[0].startswith(
                "%s: %s changed; review" % (src, fn)):
            print("selftest: the edit of %s: %s was not reported alone" % (src, fn))
            return 1
    print("selftest: a reflow passes; the edit of %s is named" % fn)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("manifest")
    ap.add_argument("--root", default=ROOT, help="repository root (default: this checkout)")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        return selftest(a.manifest, a.root)
    rows = read_manifest(a.manifest)
    rel = os.path.relpath(a.manifest, a.root) if os.path.isabs(a.manifest) else a.manifest
    models = os.path.join(os.path.dirname(rel), "*.pml")
    bad = 0
    out = []
    for line, row in rows:
        if row is None:
            out.append(line)
            continue
        src, fn, want = row
        got = fingerprint(os.path.join(a.root, src), fn) if os.path.exists(
            os.path.join(a.root, src)) else None
        if got is None:
            print("%s: %s not found; fix %s" % (src, fn, a.manifest))
            bad += 1
            out.append(line)
            continue
        if a.update:
            out.append("%s %s %s\n" % (src, fn, got))
            if got != want:
                print("%s: %s: hash updated" % (src, fn))
        elif got != want:
            print("%s: %s changed; review %s steps that cite it, then formal/sources.py "
                  "--update %s" % (src, fn, models, rel))
            bad += 1
    if a.update:
        with open(a.manifest, "w") as fh:
            fh.writelines(out)
        return 1 if bad else 0
    if not bad:
        print("%d functions unchanged" % sum(1 for _, r in rows if r))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
