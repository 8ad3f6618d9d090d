#!/usr/bin/env bash
# Line and branch coverage of src/ (clang source-based coverage, the `coverage` preset).
#   ci/coverage.sh [--no-build]
# Runs three suites, each into its own profile:
#   tests  every ctest of the build but the properties, replays and install tests (gtest
#          suites, LD_PRELOAD programs, workflows; an install links uninstrumented programs)
#   props  the rapidcheck properties (the CI seed) and the model/regressions replays
#   fuzz   each libFuzzer target over its committed corpus and fuzz/regressions, once
# then writes build/coverage/report/: index.html (combined, per line), coverage.md (per file
# of src/: lines and branches per suite and combined) and the .profdata files.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    *) echo "usage: ci/coverage.sh [--no-build]" >&2; exit 2 ;;
  esac
done
ci/deps.sh
jobs=$(nproc)
bdir=build/coverage
out=$bdir/report
profdata=$(command -v llvm-profdata-14 || command -v llvm-profdata)
llvmcov=$(command -v llvm-cov-14 || command -v llvm-cov)
if [ $build -eq 1 ]; then
  cmake --preset coverage >/dev/null
  cmake --build --preset coverage -j "$jobs"
fi
rm -rf "$out"
mkdir -p "$out/raw"/{tests,props,fuzz}

echo "=== coverage: tests"
# %p: one file per process (tests fork and exec); %m: one per instrumented binary image.
LLVM_PROFILE_FILE="$PWD/$out/raw/tests/%p-%m.profraw" \
  ctest --test-dir "$bdir" -j "$jobs" -LE 'props|replay|install' --timeout 900 --output-on-failure ||
  echo "coverage: WARNING: some tests failed under the coverage build (see above)"
echo "=== coverage: props"
LLVM_PROFILE_FILE="$PWD/$out/raw/props/%p-%m.profraw" \
  ctest --test-dir "$bdir" -j "$jobs" -L 'props|replay' --timeout 900 --output-on-failure ||
  echo "coverage: WARNING: some properties failed under the coverage build (see above)"
echo "=== coverage: fuzz"
for t in fuzz_ops fuzz_bad_free fuzz_api; do
  inputs=()
  for d in fuzz/corpus/$t fuzz/regressions/$t; do
    for f in "$d"/*; do
      [ -f "$f" ] || continue
      case "$f" in *.trace | *.md | *.txt) continue ;; esac
      inputs+=("$f")
    done
  done
  LLVM_PROFILE_FILE="$PWD/$out/raw/fuzz/%p-%m.profraw" HAKMEM_FUZZ_TRACE_DIR="$out" \
    "$bdir/fuzz/$t" -runs=0 "${inputs[@]}" >"$out/$t.log" 2>&1 ||
    echo "coverage: WARNING: $t failed on its corpus (see $out/$t.log)"
  echo "  $t: ${#inputs[@]} inputs"
done

objects=()
for f in "$bdir"/libhakmem.so "$bdir"/tests/test_* "$bdir"/tests/preload/* "$bdir"/props/hakmem_props \
         "$bdir"/model/hak-replay "$bdir"/fuzz/fuzz_*; do
  [ -f "$f" ] && [ -x "$f" ] && file -bL "$f" | grep -q ELF && objects+=(-object "$f")
done
suites=(tests props fuzz)
for s in "${suites[@]}"; do
  "$profdata" merge -sparse "$out/raw/$s"/*.profraw -o "$out/$s.profdata"
done
"$profdata" merge -sparse "$out"/{tests,props,fuzz}.profdata -o "$out/combined.profdata"

ignore='^/usr/|/(model|tests|fuzz|props|include|bench|build)/'  # everything but src/
for s in "${suites[@]}" combined; do
  "$llvmcov" export -summary-only -instr-profile="$out/$s.profdata" "${objects[@]:1}" \
    -ignore-filename-regex="$ignore" >"$out/$s.json"
done
"$llvmcov" show -format=html -show-branches=count -output-dir="$out/html" \
  -instr-profile="$out/combined.profdata" "${objects[@]:1}" -ignore-filename-regex="$ignore"
ln -sf html/index.html "$out/index.html"
python3 ci/tools/coverage_table.py "$PWD/src/" "$out" "${suites[@]}" combined >"$out/coverage.md"
cat "$out/coverage.md"
echo "coverage: report in $out/index.html, table in $out/coverage.md"
