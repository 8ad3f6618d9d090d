#!/usr/bin/env python3
"""preload.git: git under libhakmem.so on a scratch repository (isolated HOME and
config, fixed dates): init, several commits of many files of many sizes, log, diff,
repack/gc (pack-objects computes deltas on several threads), fsck, status. The same
history is built without hakmem: commit ids, trees and outputs must be identical, and the
repository must verify."""

import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preload_common as pc  # noqa: E402

COMMITS = 6
FILES = 150


def git_env(home):
    return {
        "HOME": home,
        "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.path.join(home, "gitconfig"),
        "GIT_AUTHOR_NAME": "Hakmem Test",
        "GIT_AUTHOR_EMAIL": "test@hakmem.invalid",
        "GIT_COMMITTER_NAME": "Hakmem Test",
        "GIT_COMMITTER_EMAIL": "test@hakmem.invalid",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "TZ": "UTC",
    }


def write_tree(repo, rng, round_no):
    """Creates or rewrites a deterministic set of files (text that deltas well)."""
    for f in range(FILES):
        if round_no > 0 and rng.random() < 0.6:
            continue  # leave this file as it was
        d = os.path.join(repo, f"dir{f % 7}", f"sub{f % 3}")
        os.makedirs(d, exist_ok=True)
        size = rng.choice((10, 100, 1000, 5000, 20000, 80000))
        words = [f"w{rng.randrange(500)}" for _ in range(64)]
        lines, total = [], 0
        while total < size:
            line = f"{f}:{round_no}: " + " ".join(rng.sample(words, 8)) + "\n"
            lines.append(line)
            total += len(line)
        with open(os.path.join(d, f"file{f}.txt"), "w") as fh:
            fh.write("".join(lines))
    if round_no % 2 == 1:  # delete a few files in some rounds
        for f in range(round_no, FILES, 37):
            p = os.path.join(repo, f"dir{f % 7}", f"sub{f % 3}", f"file{f}.txt")
            if os.path.exists(p):
                os.unlink(p)


def build_history(git, lib, root, preload):
    home = os.path.join(root, "home")
    repo = os.path.join(root, "repo")
    os.makedirs(home)
    os.makedirs(repo)
    with open(os.path.join(home, "gitconfig"), "w") as f:
        f.write("[gc]\n\tauto = 0\n\tautoDetach = false\n[maintenance]\n\tauto = false\n"
                "[init]\n\tdefaultBranch = main\n[core]\n\tpager = cat\n")
    env = git_env(home)
    rng = random.Random(4711)
    outputs = {}

    def g(*args, name=None, min_processes=1):
        r = pc.run([git, *args], lib, root, env=env, cwd=repo, preload=preload,
                   min_processes=min_processes)
        if name:
            outputs[name] = r.stdout
        return r

    g("init", "-q")
    for c in range(COMMITS):
        write_tree(repo, rng, c)
        date = f"2024-01-{c + 1:02d}T12:00:00+0000"
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        g("add", "-A")
        g("commit", "-q", "-m", f"round {c}\n\nfiles rewritten in round {c}")
    g("log", "--stat", "--format=%H %s", name="log")
    g("diff", "--stat", "HEAD~3", "HEAD", name="diff")
    g("rev-parse", "HEAD", "HEAD^{tree}", name="rev")
    # repack: pack-objects (deltas, threads) runs as a child process of git.
    g("repack", "-a", "-d", "-f", "--window=20", "--threads=2",
      min_processes=2 if preload else 1)
    g("gc", "--prune=now", "-q", min_processes=2 if preload else 1)
    g("count-objects", "-v", name="count")
    g("fsck", "--full", "--strict", name="fsck")
    g("status", "--porcelain", name="status")
    g("ls-files", "-s", name="ls")
    g("cat-file", "-p", "HEAD:dir0/sub0/file0.txt", name="file0")
    with open(os.path.join(repo, "dir0", "sub0", "file0.txt")) as f:
        outputs["file0-disk"] = f.read()
    return outputs


def test(lib, workdir):
    git = pc.require_program("git")
    ref = build_history(git, lib, os.path.join(workdir, "plain"), preload=False)
    got = build_history(git, lib, os.path.join(workdir, "hakmem"), preload=True)

    log_commits = [ln for ln in got["log"].splitlines() if len(ln) > 41 and ln[40] == " "]
    pc.expect_equal(len(log_commits), COMMITS, "number of commits in git log")
    pc.expect_equal(got["status"], "", "git status --porcelain after the last commit")
    pc.expect_equal(got["file0"], got["file0-disk"], "HEAD:dir0/sub0/file0.txt vs. the file on disk")
    count = dict(ln.split(": ", 1) for ln in got["count"].splitlines())
    pc.expect_equal(count.get("count"), "0", "loose objects after gc")
    if int(count.get("in-pack", "0")) < COMMITS * 2:
        pc.fail(f"too few packed objects after gc: {got['count']}")
    ref_count = dict(ln.split(": ", 1) for ln in ref["count"].splitlines())
    pc.expect_equal(count.get("in-pack"), ref_count.get("in-pack"), "packed objects, with vs. without hakmem")
    for key in ("log", "diff", "rev", "ls", "file0", "fsck"):
        if got[key] != ref[key]:
            pc.fail(f"git output '{key}' under hakmem differs from the run without hakmem:\n"
                    f"--- without ---\n{ref[key][:3000]}\n--- with hakmem ---\n{got[key][:3000]}")
    print(f"git under hakmem: {COMMITS} commits, HEAD {got['rev'].split()[0]}, identical to plain run")


if __name__ == "__main__":
    pc.main(test)
