#!/usr/bin/env bash
# The test command (README): installs what it needs, builds, runs every test suite.
#   ci/test.sh           everything
#   ci/test.sh --quick   the release build's tests only
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) echo "usage: ci/test.sh [--quick]" >&2; exit 2 ;;
  esac
done

ci/deps.sh
jobs=$(nproc)
declare -a stage_names stage_times stage_results
run_stage() {  # name, command...
  local name=$1; shift
  local t0=$(date +%s) rc=0
  echo "=== stage: $name"
  "$@" || rc=$?
  stage_names+=("$name"); stage_times+=($(( $(date +%s) - t0 ))); stage_results+=($rc)
  return $rc
}
summary() {
  echo
  echo "=== summary"
  for i in "${!stage_names[@]}"; do
    printf '  %-24s %5ss  %s\n' "${stage_names[$i]}" "${stage_times[$i]}" \
      "$([ "${stage_results[$i]}" -eq 0 ] && echo ok || echo FAILED)"
  done
}
trap summary EXIT

build_and_test() {  # preset
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1" -j "$jobs"
  # A stage that registers no tests fails rather than passing empty.
  ctest --preset "$1" -j "$jobs" --timeout 600 --no-tests=error
}

run_stage "format" ci/format.sh --check
run_stage "release (gcc)" build_and_test release
[ $quick -eq 1 ] && exit 0
run_stage "release (clang)" build_and_test release-clang
run_stage "asan-ubsan" build_and_test asan-ubsan
run_stage "tsan" build_and_test tsan
# libFuzzer (clang, ASan + UBSan): committed corpora and fuzz/regressions replayed, each
# target fuzzed for 60 s from its corpus, the OSS-Fuzz build.sh contract.
run_stage "fuzz (60 s per target)" build_and_test fuzz
run_stage "valgrind memcheck" build_and_test valgrind
