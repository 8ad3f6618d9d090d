#!/usr/bin/env bash
# The test command (README): installs what it needs, builds, runs every test suite.
#   ci/test.sh                 every stage, in order
#   ci/test.sh --quick         format and the gcc release stage only
#   ci/test.sh --stage NAME    one stage (what each GitHub Actions job runs)
#   ci/test.sh --list-stages   the stage names, one per line
set -euo pipefail
cd "$(dirname "$0")/.."

# name | what it runs (a function below). The order is the order of a full run.
stages=(
  "format|format_and_lint"
  "release|build_and_test release"
  "release-clang|build_and_test release-clang"
  "asan-ubsan|build_and_test asan-ubsan"
  "tsan|build_and_test tsan"
  "formal|build_and_test formal"
  "fuzz|build_and_test fuzz"
  "valgrind|build_and_test valgrind"
)
stage_names_all() { for s in "${stages[@]}"; do echo "${s%%|*}"; done; }

only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) only=(format release) ;;
    --stage)
      [ $# -ge 2 ] || { echo "ci/test.sh: --stage needs a name ($(stage_names_all | tr '\n' ' '))" >&2; exit 2; }
      stage_names_all | grep -qx -- "$2" || { echo "ci/test.sh: no stage '$2' ($(stage_names_all | tr '\n' ' '))" >&2; exit 2; }
      only+=("$2"); shift ;;
    --list-stages) stage_names_all; exit 0 ;;
    *) echo "usage: ci/test.sh [--quick | --stage NAME... | --list-stages]" >&2; exit 2 ;;
  esac
  shift
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

format_and_lint() {
  ci/format.sh --check
  ci/actionlint.sh
}

build_and_test() {  # preset
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1" -j "$jobs"
  # A stage that registers no tests fails rather than passing empty.
  ctest --preset "$1" -j "$jobs" --timeout 600 --no-tests=error
}

# Stages, in brief: release and release-clang run every gtest suite, LD_PRELOAD program,
# property and replay; asan-ubsan and tsan the same under the sanitizers; formal the Spin
# model, the z3 proofs and the Relacy interleavings (formal/README.md); fuzz replays the
# committed corpora and fuzz/regressions, fuzzes each target for 60 s from its corpus and
# checks the OSS-Fuzz build.sh contract; valgrind runs a suite under memcheck.
for s in "${stages[@]}"; do
  name=${s%%|*}
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then continue; fi
  read -r -a cmd <<<"${s#*|}"
  run_stage "$name" "${cmd[@]}"
done
