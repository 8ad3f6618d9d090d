#!/usr/bin/env bash
# formal/relacy/mutants.sh [NAME...]: proof that the Relacy scenarios bite. Each mutant of
# mutants.txt injects one known bug into a scratch copy of the tree, which is configured
# and built with the formal preset; then every scenario runs on it. A mutant is "caught"
# when at least one scenario fails. Prints, per mutant and scenario, the result, Relacy's
# report (its first line) and the time. Nothing in this tree is changed.
#
# formal/relacy/mutants.sh --apply NAME SRC_ROOT OUT_ROOT: writes the mutated copy of the
# mutant's file to OUT_ROOT/<its path under src/> (the in-tree ctest relacy.mutant.*).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list=$here/mutants.txt
. "$here/../../ci/tools/mutants.sh"

mutant_line() {
  mutant_lines "$list" | grep -m1 "^$1|"
}

if [ "${1:-}" = "--apply" ]; then
  name=$2 src_root=$3 out_root=$4
  line=$(mutant_line "$name") || { echo "mutants.sh: no mutant $name" >&2; exit 2; }
  IFS='|' read -r _ file subst <<<"$line"
  out=$out_root/${file#src/}
  mkdir -p "$(dirname "$out")"
  cp "$src_root/$file" "$out"
  mutant_apply "$out" "$subst" || { echo "mutants.sh: $name does not apply to $file" >&2; exit 1; }
  exit 0
fi

root=$(cd "$here/../.." && pwd)
work=${MUTANTS_DIR:-/tmp/hakmem-relacy-mutants}
want=("$@")
status=0
printf '%-26s %-32s %-8s %7s  %s\n' mutant scenario result seconds report
while IFS='|' read -r name file subst; do
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  dir=$work/$name
  mutant_copy "$root" "$dir"
  if ! mutant_apply "$dir/$file" "$subst"; then
    printf '%-26s %-32s %-8s\n' "$name" - NOT-APPLIED
    status=1
    continue
  fi
  if ! (cd "$dir" && cmake --preset formal >"$dir/configure.log" 2>&1 &&
        cmake --build --preset formal --target hakmem_relacy >"$dir/build.log" 2>&1); then
    printf '%-26s %-32s %-8s (see %s)\n' "$name" - NO-BUILD "$dir/build.log"
    status=1
    continue
  fi
  caught=0
  bin=$dir/build/formal/formal/relacy/hakmem_relacy
  for s in $("$bin" --list); do
    t0=$(date +%s.%N)
    timeout 900 "$bin" "$s" >"$dir/$s.log" 2>&1
    rc=$?
    secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
    if [ $rc -eq 0 ]; then
      printf '%-26s %-32s %-8s %7s\n' "$name" "$s" passed "$secs"
    else
      caught=1
      # Relacy's report: the line after the test name, then "iteration: N".
      report=$(sed -n '2p' "$dir/$s.log" | cut -c1-90)
      iter=$(grep -m1 '^iteration:' "$dir/$s.log")
      printf '%-26s %-32s %-8s %7s  %s (%s)\n' "$name" "$s" caught "$secs" "$report" "$iter"
    fi
  done
  [ $caught -eq 1 ] || { echo "$name: MISSED by every scenario"; status=1; }
done < <(mutant_lines "$list")
exit $status
