#!/usr/bin/env bash
# formal/mutants.sh [--all-tests] [--props | --props-only] [NAME...]: proof that the formal
# stage bites. Each mutant of formal/TOOL/mutants.txt injects one known bug into src/ of a
# scratch copy of the tree; the copy's formal preset is built and TOOL's tests run
# (--all-tests: every formal test; then spin.sources also fails for any mutant of a
# function the Spin model cites, which says "review the model", not "found the bug"). A
# mutant is "caught" when a test fails; the tests that failed are printed. With --props
# the property suite also runs on each mutant (the release build of the copy), to show
# which stage catches what; --props-only runs the property suite alone. The per-tool
# runners (formal/z3/mutants.sh, formal/relacy/mutants.sh) print more of each report.
# Nothing in this tree is changed.
#
# mutants.txt lines: name|file|perl -0 substitution (one match required); # comments.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${MUTANTS_DIR:-/tmp/hakmem-formal-mutants}
jobs=$(nproc)
props=0
formal=1
all_tests=0
want=()
for a in "$@"; do
  case "$a" in
    --props) props=1 ;;
    --props-only) props=1 formal=0 ;;
    --all-tests) all_tests=1 ;;
    -h | --help) sed -n 2,12p "$0"; exit 0 ;;
    *) want+=("$a") ;;
  esac
done

. ci/tools/mutants.sh
mutants=()
for f in formal/*/mutants.txt; do  # each line prefixed with its tool
  tool=$(basename "$(dirname "$f")")
  while IFS= read -r line; do mutants+=("$tool|$line"); done < <(mutant_lines "$f")
done
[ ${#mutants[@]} -gt 0 ] || { echo "no mutants found in formal/*/mutants.txt" >&2; exit 2; }

printf '%-34s %-8s %6s  %-8s  %s\n' mutant formal secs props "formal tests that failed"
status=0
for m in "${mutants[@]}"; do
  IFS='|' read -r tool name file subst <<<"$m"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  dir=$work/$name
  mutant_copy "$root" "$dir"
  if ! mutant_apply "$dir/$file" "$subst"; then
    printf '%-34s %-8s\n' "$name" NOT-APPLIED
    status=1
    continue
  fi
  t0=$(date +%s)
  verdict=- failed=
  if [ $formal -eq 1 ]; then
    if ! (cd "$dir" && cmake --preset formal -DHAKMEM_FORMAL_MUTANT_TESTS=OFF >/dev/null &&
          cmake --build --preset formal -j "$jobs") \
        >"$dir/build.log" 2>&1; then
      printf '%-34s %-8s (see %s)\n' "$name" NO-BUILD "$dir/build.log"
      status=1
      continue
    fi
    select=(-R "^$tool\\.")
    [ $all_tests -eq 1 ] && select=()
    (cd "$dir" && ctest --preset formal "${select[@]}" -j "$jobs" --timeout 900 --no-tests=error) \
      >"$dir/formal.log" 2>&1
    rc=$?
    failed=$(grep -E '^\s+[0-9]+ - ' "$dir/formal.log" | sed -E 's/^\s+[0-9]+ - ([^ ]+).*/\1/' | tr '\n' ' ')
    verdict=caught
    # a test that ran into ctest's --timeout is not a refutation
    if grep -q "\*\*\*Timeout" "$dir/formal.log"; then
      verdict=TIMEOUT
      status=1
    elif [ $rc -eq 0 ]; then
      verdict=MISSED
      status=1
    fi
  fi
  secs=$(($(date +%s) - t0))
  pverdict=-
  if [ $props -eq 1 ]; then
    if (cd "$dir" && cmake -S . -B build/props -G Ninja -DCMAKE_BUILD_TYPE=Release -DHAKMEM_BUILD_BENCH=OFF &&
        cmake --build build/props --target hakmem_props -j "$jobs") >"$dir/props-build.log" 2>&1; then
      (RC_PARAMS="${MUTANTS_RC_PARAMS:-max_success=500 seed=20261122}" timeout 900 \
        "$dir/build/props/props/hakmem_props") >"$dir/props.log" 2>&1
      prc=$?
      # 124: timeout's status, neither a failure nor a pass
      if [ $prc -eq 124 ]; then pverdict=timeout; elif [ $prc -ne 0 ]; then pverdict=caught; else pverdict=missed; fi
    else
      pverdict=no-build
    fi
  fi
  printf '%-34s %-8s %6s  %-8s  %s\n' "$name" "$verdict" "$secs" "$pverdict" "$failed"
done
exit $status
