#!/usr/bin/env bash
# formal/z3/mutants.sh [NAME...]: proof that the z3 proofs bite. Each mutant of
# formal/z3/mutants.txt injects one known bug into a scratch copy of the tree, builds
# prove_arith there and runs every proof group; a mutant is "caught" when a group fails.
# Prints, per mutant, the groups that caught it, the time, and the first counterexample
# line (logs: $MUTANTS_DIR/NAME/GROUP.log). Nothing in this tree is changed.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. ci/tools/mutants.sh
work=${MUTANTS_DIR:-/tmp/hakmem-z3-mutants}
groups=(region grid states slabs layout classes alignment memalign policy)

want=("$@")
printf '%-28s %-8s %8s  %-28s %s\n' mutant result seconds caught-by first-counterexample-value
status=0
while IFS='|' read -r name file subst; do
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  dir=$work/$name
  mutant_copy "$root" "$dir"
  if ! mutant_apply "$dir/$file" "$subst"; then
    printf '%-28s %-8s\n' "$name" "NOT-APPLIED"
    status=1
    continue
  fi
  # -O1: the build dominates otherwise; the proofs do not depend on it.
  if ! (cmake -S "$dir" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHAKMEM_BUILD_FORMAL=ON \
          -DHAKMEM_BUILD_TESTS=OFF -DHAKMEM_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_RELEASE=-O1 >/dev/null &&
        cmake --build "$dir/build" --target prove_arith >"$dir/build.log" 2>&1); then
    printf '%-28s %-8s (see %s)\n' "$name" "NO-BUILD" "$dir/build.log"
    status=1
    continue
  fi
  t0=$(date +%s.%N)
  caught=()
  for g in "${groups[@]}"; do
    # A mutant may make a loop endless (natively too): a group past the timeout counts as
    # failed, marked "(timeout)".
    timeout "${MUTANTS_TIMEOUT:-600}" "$dir/build/formal/z3/prove_arith" "$g" >"$dir/$g.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || { [ $rc -eq 124 ] && caught+=("$g(timeout)") || caught+=("$g"); }
  done
  secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
  if [ ${#caught[@]} -gt 0 ]; then
    first=$(grep -h -m1 -A2 -E "FAILED|MISMATCH" "$dir/${caught[0]%(timeout)}.log" | grep -m1 -E "^      |MISMATCH" |
            sed 's/^ *//' | cut -c1-60)
    printf '%-28s %-8s %8s  %-28s %s\n' "$name" caught "$secs" "$(IFS=,; echo "${caught[*]}")" "$first"
  else
    printf '%-28s %-8s %8s\n' "$name" MISSED "$secs"
    status=1
  fi
done < <(mutant_lines "$root/formal/z3/mutants.txt")
exit $status
