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
max_len=$(sed -n 's/^max_len *= *//p' "$dir/$name.options" 2>/dev/null || true)
[ -n "$max_len" ] && opts+=("-max_len=$max_len")
exec "$fuzzer" "${opts[@]}" -runs="$runs" -seed="${SEED:-1}" -max_total_time="$seconds" -timeout=25 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/new" "$corpus"
