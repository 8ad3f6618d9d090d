#!/usr/bin/env bash
# props/mutants.sh [NAME...]: proof that the property suites bite. Each mutant injects one
# known bug into a scratch copy of the tree, builds the properties and runs them with the
# CI case count; a mutant is "caught" when a property fails. Prints caught/missed, the time
# to catch, and the shrunk counterexample. Nothing in this tree is changed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${MUTANTS_DIR:-/tmp/hakmem-mutants}
params=${MUTANTS_RC_PARAMS:-max_success=500}
. ci/tools/mutants.sh

# name | file | perl substitution (one match required)
mutants=(
  "no-purge-before-release|src/region/lifecycle.cc|s{  purge_caches\(ctx, r, -1\);  // the box leaves it, if it was the box.s region\n}{}"
  "remote-pending-not-reported|src/region/region.cc|s{  return region_remote_blocks\(r\);\n}{  return 0;\n}"
  # The seed's unchecked ULTRA free, on the one fast path: a double free of a 1024-byte
  # block with ULTRA on is no longer caught.
  "ultra-free-unchecked|src/front/hot.h|s{if \(HAK_UNLIKELY\(st.load\(std::memory_order_relaxed\) != kLive\)\)}{if (HAK_UNLIKELY(k != RegionKind::kUltra && st.load(std::memory_order_relaxed) != kLive))}"
  # A region resolved with half the mask: blocks in the upper MiB find no header.
  "wrong-region-mask|src/region/region.h|s{return reinterpret_cast<Region\*>\(region_base\(p\)\);}{return reinterpret_cast<Region*>(reinterpret_cast<uintptr_t>(p) & ~((kRegionSize >> 1) - 1));}"
  "warm-reserve-ignored|src/region/lifecycle.cc|s{  if \(sl.warm_count < g_config.warm_regions\) \{}{  if (false) \{}"
  "exit-forgets-remote-list|src/region/lifecycle.cc|s{  region_collect\(r, list\);\n  r->owner.store\(nullptr}{  \(void\)list;\n  r->owner.store\(nullptr}"
  # The generator gaps of issue 15: each is caught only by the draws added for it.
  # A block-start check of mid classes (above 1 KiB, all multiples of 256) that tests low
  # bits only: caught by interior offsets at the size's lowest set bit.
  "grid-low-bits-only|src/region/region.h|s{return k \* r.block_size == off;}{return r.block_size > 1024 ? (off & 255) == 0 : k * r.block_size == off;}"
  # A free of a pointer inside a large run, whose region has no map entry, that frees the
  # run instead of reporting (caught by bad_free tail: pointers whole regions in).
  "large-tail-frees-the-run|src/front/api.cc|s{  // Most regions of a large run have no map entry \(large.cc\): the reason says which.\n}{  if (LargeHeader* h = large_run_containing(p)) return large_free(reinterpret_cast<char*>(h) + h->user_off, call);\n}"
  # calloc of a reused mid block clears only its first page (caught by calloc sizes above
  # 4 KiB right after a free of the size, and the zero check of every page and the tail).
  "calloc-clears-first-page|src/thread/context.cc|s{    memset\(p, 0, bytes\);\n  \}}{    memset(p, 0, bytes < 4096 ? bytes : 4096);\n  \}}"
  # hak_collect forgets the purge of the context's warm regions (caught with a purge delay:
  # the residency check after collect, SPEC section 4's purge rule).
  "collect-keeps-warm-pages|src/region/lifecycle.cc|s{  context_purge\(ctx, true\);  // hak_collect}{  // hak_collect}"
)

want=("$@")
printf '%-28s %-8s %8s  %s\n' mutant result seconds counterexample
status=0
for m in "${mutants[@]}"; do
  IFS='|' read -r name file subst <<<"$m"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  dir=$work/$name
  mutant_copy "$root" "$dir"
  if ! mutant_apply "$dir/$file" "$subst"; then
    printf '%-28s %-8s\n' "$name" "NOT-APPLIED"
    status=1
    continue
  fi
  if ! (cmake -S "$dir" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHAKMEM_BUILD_BENCH=OFF >/dev/null &&
        cmake --build "$dir/build" --target hakmem_props >"$dir/build.log" 2>&1); then
    printf '%-28s %-8s (see %s)\n' "$name" "NO-BUILD" "$dir/build.log"
    status=1
    continue
  fi
  t0=$(date +%s.%N)
  (RC_PARAMS="$params" exec timeout 600 "$dir/build/props/hakmem_props") >"$dir/props.log" 2>&1
  rc=$?
  [ $rc -lt 128 ] || echo "killed by signal $((rc - 128)) (a crash counts as caught)" >>"$dir/props.log"
  secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
  if [ $rc -eq 124 ]; then  # timeout's status: the properties neither failed nor passed
    printf '%-28s %-8s %8s  %s\n' "$name" TIMEOUT "$secs" "(600 s: not caught)"
    status=1
  elif [ $rc -ne 0 ]; then
    example=$(grep -m1 -A1 "disagreement" "$dir/props.log" | tr '\n' ' ' | cut -c1-160)
    [ -n "$example" ] || example=$(grep -m1 -E "Falsifiable|Segmentation|Aborted" "$dir/props.log" | cut -c1-160)
    [ -n "$example" ] || example="(exit $rc)"
    printf '%-28s %-8s %8s  %s\n' "$name" caught "$secs" "$example"
  else
    printf '%-28s %-8s %8s\n' "$name" MISSED "$secs"
    status=1
  fi
done
exit $status
