#!/usr/bin/env bash
# ctest fuzz.<target>.smoke: a short libFuzzer run from the committed corpus: RUNS inputs
# (-1: no limit) with a fixed seed (SEED, default 1: the same run every time; 0: random),
# at most SECONDS.
#   ctest-smoke.sh FUZZER CORPUS_DIR WORK_DIR [RUNS [SECONDS]]
# New inputs go to WORK_DIR/new (the committed corpus is never written); a crash leaves
# its input (and, for the lockstep targets, its trace) in WORK_DIR.
set -euo pipefail
fuzzer=$1 corpus=$2 work=$3 runs=${4:-2000} seconds=${5:-60}
rm -rf "$work"
mkdir -p "$work/new"
export HAKMEM_FUZZ_TRACE_DIR="$work"
opts=()
name=$(basename "$fuzzer")
dir=$(dirname "$0")
[ -f "$dir/$name.dict" ] && opts+=("-dict=$dir/$name.dict")
mapfile -t flags < <("$dir/options-flags.sh" "$dir/$name.options")
# Every setting of the .options file is a flag, and libFuzzer knows each one.
keys=$(grep -c '^[a-z_]* *=' "$dir/$name.options" 2>/dev/null || true)
if [ "${keys:-0}" != "${#flags[@]}" ]; then
  echo "FAIL: $name.options has ${keys:-0} settings, options-flags.sh made ${#flags[@]} flags"; exit 1
fi
status=0
# -rss_limit_mb as overnight.sh's (3072) plus a margin: a fresh-clone CI run once saw
# fuzz_api's peak RSS at 3128 MB (an input with a calloc of 25.3 GB, just past RAM), which
# neither that input alone nor five reruns of the smoke reproduced (fuzz/README.md).
"$fuzzer" "${opts[@]}" "${flags[@]}" -runs="$runs" -seed="${SEED:-1}" -max_total_time="$seconds" \
  -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$work/" "$work/new" "$corpus" 2>&1 |
  tee "$work/log" || status=1
if grep -q "unrecognized flag" "$work/log"; then
  echo "FAIL: libFuzzer does not know a flag of $name.options"; exit 1
fi
exit $status
