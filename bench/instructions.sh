#!/usr/bin/env bash
# Instructions per malloc+free pair, counted with callgrind (valgrind --tool=callgrind):
# deterministic where timings are not. Used by `ci/bench.sh --instructions` (a table over the
# allocators) and by the ctest `perf_golden.instructions` (label perf-golden, about 15 s:
# hakmem's figures against bench/golden/instructions.txt; registered by bench/CMakeLists.txt
# for the plain gcc Release build when valgrind is found).
#
#   bench/instructions.sh [--build DIR] [--alloc 'LABEL|PRELOAD|VAR=VAL ...']...
#                         [--markdown FILE] [--ops1 N] [--ops2 N]
#       a markdown table on stdout (and in FILE). Without --alloc: hakmem and
#       hakmem (ULTRA off) from DIR. PRELOAD empty = no preload (glibc).
#   bench/instructions.sh --check [--build DIR]
#       compares hakmem's figures (default and ULTRA off) with the golden ones, printing
#       both: fails (exit 1) when one grew by more than max(3%, 2 instructions); a note when
#       one dropped by more than that (the golden can be lowered). Exit 77 (ctest: skipped)
#       without valgrind.
#   bench/instructions.sh --update-golden [--build DIR]
#       rewrites bench/golden/instructions.txt with the figures of this build.
#
# DIR: the build directory (default build/release): DIR/bench/bench_mixed, bench_churn and
# DIR/libhakmem.so.
#
# What is counted. Each workload runs under callgrind at two operation counts, OPS1 (200k)
# and OPS2 (400k), with the allocator preloaded (LD_PRELOAD reaches the program through
# valgrind; valgrind adds its own vgpreload_core to it). I(n) = every instruction the
# process executed: (I(OPS2) - I(OPS1)) / (OPS2 - OPS1) cancels start-up, exit and the
# warm-up of the first OPS1 operations. The same difference of a --dry run (the loop's RNG,
# slot handling and touch of the block, malloc/free replaced by empty stand-ins) is the
# loop's own cost per pair and is subtracted:
#
#   per pair = ΔI(workload) / Δops - ΔI(workload --dry) / Δops
#
# so it holds the allocator's malloc and free, the calls into them (call, PLT jump, argument
# set-up) and whatever else the allocator runs meanwhile (amortized refills, collection). The
# second figure, "in the allocator's object", is the same difference counted only in the
# preloaded library's own code (glibc: libc.so.6; plus code callgrind places in no object,
# see count()), parsed from the callgrind output; it proves the preload took effect (a run
# whose object executes nothing per pair fails).
#
# Workloads: mixed-400 (bench_mixed --ws 400: sizes 16..1024), c7 (bench_mixed --ws 400,
# 1024 B only), tiny-churn (bench_churn --size 16 --keep 1: malloc(16) then free, with one
# more 16-byte block live throughout so the page never empties: the fast path),
# tiny-churn-empty (the same with --keep 0: every free empties the block's page, which some
# allocators act on).
# HAKMEM_* variables of the caller are dropped in --check/--update-golden (golden figures
# are for the defaults) and kept otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
golden=$root/bench/golden/instructions.txt

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

mode=table build=$root/build/release markdown="" ops1=200000 ops2=400000
declare -a allocs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --check) mode=check ;;
    --update-golden) mode=update ;;
    --build) [ $# -ge 2 ] || usage; build=$2; shift ;;
    --alloc) [ $# -ge 2 ] || usage; allocs+=("$2"); shift ;;
    --markdown) [ $# -ge 2 ] || usage; markdown=$2; shift ;;
    --ops1) [ $# -ge 2 ] || usage; ops1=$2; shift ;;
    --ops2) [ $# -ge 2 ] || usage; ops2=$2; shift ;;
    -h|--help) usage ;;
    *) echo "instructions: unknown argument: $1" >&2; usage ;;
  esac
  shift
done
if ! [[ $ops1 =~ ^[1-9][0-9]*$ && $ops2 =~ ^[1-9][0-9]*$ ]] || [ "$ops2" -le "$ops1" ]; then
  echo "instructions: want 0 < --ops1 < --ops2" >&2
  exit 2
fi
build=$(cd "$build" && pwd)
log() { echo "instructions: $*" >&2; }

if ! command -v valgrind >/dev/null; then
  log "valgrind not found"
  [ "$mode" = table ] && exit 1
  exit 77
fi
hakmem_so=$build/libhakmem.so
for f in "$build/bench/bench_mixed" "$build/bench/bench_churn" "$hakmem_so"; do
  [ -f "$f" ] || { log "missing $f (build first)"; exit 1; }
done

if [ "$mode" != table ]; then
  # golden figures are for hakmem's defaults
  while read -r v; do unset "$v"; done < <(compgen -e | grep '^HAKMEM_' || true)
  allocs=()
fi
if [ ${#allocs[@]} -eq 0 ]; then
  allocs=("hakmem|$hakmem_so|" "hakmem (ULTRA off)|$hakmem_so|HAKMEM_TINY_C7_ULTRA=0")
fi

# --- workloads: name -> command (the operation count is appended) ---
wl_names=(mixed-400 c7 tiny-churn tiny-churn-empty)
wl_cmd() {  # name -> the command without --ops
  case "$1" in
    mixed-400) echo "$build/bench/bench_mixed --ws 400 --name mixed" ;;
    c7) echo "$build/bench/bench_mixed --ws 400 --min 1024 --max 1024 --name c7" ;;
    tiny-churn) echo "$build/bench/bench_churn --size 16 --keep 1 --name tiny-churn" ;;
    tiny-churn-empty) echo "$build/bench/bench_churn --size 16 --keep 0 --name tiny-churn-empty" ;;
  esac
}
libc=$(ldd "$build/bench/bench_mixed" | awk '$1 == "libc.so.6" { print $3 }')
libc=$(realpath "$libc")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count PRELOAD ENV-WORDS OPS WORKLOAD [--dry] -> "TOTAL OBJECT": instructions of the whole
# process and those executed in the preloaded object's own code (glibc: libc).
count() {
  local pre=$1 envw=$2 ops=$3 wl=$4 dry=${5:-}
  local out=$work/cg.out obj
  local -a cmd=(env -u LD_PRELOAD)
  if [ -n "$pre" ]; then
    cmd+=("LD_PRELOAD=$pre")
    obj=$(realpath "$pre")
  else
    obj=$libc
  fi
  # shellcheck disable=SC2206  # VAR=VAL words, split on purpose
  cmd+=($envw valgrind --tool=callgrind -q --callgrind-out-file="$out")
  local -a words
  read -ra words <<<"$(wl_cmd "$wl")"
  cmd+=("${words[@]}" --ops "$ops")
  if [ -n "$dry" ]; then cmd+=("$dry"); fi
  rm -f "$out"
  if ! "${cmd[@]}" >"$work/stdout" 2>"$work/stderr" || ! grep -q '^RESULT ' "$work/stdout"; then
    log "failed: ${cmd[*]}"
    tail -n 5 "$work/stderr" | sed 's/^/    /' >&2
    return 1
  fi
  # Self cost per object: "ob=(id) name" sets the current object ("cob=" only names one),
  # cost lines "POSITION Ir" add to it, the line after "calls=" is a callee's inclusive cost
  # (not self). The self costs must add up to the summary. Code callgrind places in no
  # object ("???") counts as the allocator's: tcmalloc keeps malloc and free in a section of
  # its own (google_malloc) that callgrind does not attribute to the library.
  awk -v obj="$obj" '
    /^summary:/ { total = $2; next }
    /^c?ob=/ {
      callee = substr($0, 1, 1) == "c"; s = $0; sub(/^c?ob=/, "", s)
      if (match(s, /^\([0-9]+\)/)) { id = substr(s, 1, RLENGTH); rest = substr(s, RLENGTH + 2) }
      else { id = s; rest = s }
      if (rest != "") name[id] = rest
      if (!callee) cur = id
      next
    }
    /^calls=/ { skip = 1; next }
    /^[0-9+*-]/ { if (skip) { skip = 0; next } self[cur] += $2; sum += $2; next }
    END {
      if (total == "" || sum != total) { print "parse mismatch: summary " total ", sum " sum > "/dev/stderr"; exit 1 }
      for (id in self) if (name[id] == obj || name[id] == "???") o += self[id]
      printf "%d %d\n", total, o
    }' "$out"
}

declare -A dry_pair=() fig=() objfig=()
d=$((ops2 - ops1))
t0=$(date +%s)
for wl in "${wl_names[@]}"; do
  r1=$(count "" "" "$ops1" "$wl" --dry)
  r2=$(count "" "" "$ops2" "$wl" --dry)
  read -r a _ <<<"$r1"
  read -r b _ <<<"$r2"
  dry_pair[$wl]=$(awk -v a="$a" -v b="$b" -v d="$d" 'BEGIN { printf "%.1f", (b - a) / d }')
done
for spec in "${allocs[@]}"; do
  IFS='|' read -r label pre envw <<<"$spec"
  for wl in "${wl_names[@]}"; do
    r1=$(count "$pre" "$envw" "$ops1" "$wl")
    r2=$(count "$pre" "$envw" "$ops2" "$wl")
    read -r a oa <<<"$r1"
    read -r b ob <<<"$r2"
    fig[$label/$wl]=$(awk -v a="$a" -v b="$b" -v d="$d" -v l="${dry_pair[$wl]}" \
      'BEGIN { printf "%.1f", (b - a) / d - l }')
    objfig[$label/$wl]=$(awk -v a="$oa" -v b="$ob" -v d="$d" 'BEGIN { printf "%.1f", (b - a) / d }')
    if awk -v x="${objfig[$label/$wl]}" 'BEGIN { exit !(x < 5) }'; then
      log "$label on $wl: only ${objfig[$label/$wl]} instructions per pair in ${pre:-$libc}:"
      log "  malloc and free do not run there; the preload did not take effect under valgrind"
      exit 1
    fi
    log "$(printf '%-20s %-16s %7s per pair (%s in the object, loop %s)' "$label" "$wl" \
      "${fig[$label/$wl]}" "${objfig[$label/$wl]}" "${dry_pair[$wl]}")"
  done
done
elapsed=$(($(date +%s) - t0))

compiler() {  # the build's C++ compiler, as CMake found it
  local cxx
  cxx=$(awk -F= '/^CMAKE_CXX_COMPILER:/ { print $2; exit }' "$build/CMakeCache.txt" 2>/dev/null || true)
  "${cxx:-c++}" --version 2>/dev/null | head -n1
}
golden_key() { echo "$1" | tr 'A-Z ' 'a-z-' | tr -d '()'; }  # "hakmem (ULTRA off)" -> hakmem-ultra-off

case "$mode" in
  table)
    {
      echo "# Instructions per malloc+free pair"
      echo
      echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); hakmem commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
      echo "- $(valgrind --version), callgrind; operation counts $ops1 and $ops2; ${elapsed} s"
      echo
      echo "Per pair = (I($ops2) - I($ops1)) / $d minus the same for the workload's --dry run"
      echo "(the loop without malloc/free): the allocator's malloc and free, the calls into them"
      echo "and anything it amortizes over the pairs. In parentheses: the part executed in the"
      echo "allocator's own library (glibc: libc.so.6; with code callgrind places in no object, such"
      echo "as tcmalloc's malloc section). bench/instructions.sh explains the method."
      echo
      printf '| allocator |'; for wl in "${wl_names[@]}"; do printf ' %s |' "$wl"; done; echo
      printf '|---|'; for _ in "${wl_names[@]}"; do printf -- '---:|'; done; echo
      for spec in "${allocs[@]}"; do
        IFS='|' read -r label _ _ <<<"$spec"
        printf '| %s |' "$label"
        for wl in "${wl_names[@]}"; do printf ' %s (%s) |' "${fig[$label/$wl]}" "${objfig[$label/$wl]}"; done
        echo
      done
      printf '| (loop itself, subtracted) |'; for wl in "${wl_names[@]}"; do printf ' %s |' "${dry_pair[$wl]}"; done; echo
      echo
      echo "Workloads: mixed-400 \`bench_mixed --ws 400\` (16..1024 B); c7 \`bench_mixed --ws 400 --min 1024 --max 1024\`;"
      echo "tiny-churn \`bench_churn --size 16 --keep 1\` (malloc(16) then free, another 16 B block live"
      echo "throughout: the fast path); tiny-churn-empty \`bench_churn --size 16 --keep 0\` (the same, but"
      echo "each free leaves the page empty). Allocators:"
      echo
      for spec in "${allocs[@]}"; do
        IFS='|' read -r label pre envw <<<"$spec"
        if [ -n "$pre$envw" ]; then
          echo "- $label: \`$(echo "${pre:+LD_PRELOAD=$pre} $envw" | sed 's/^ //; s/ $//')\`"
        else
          echo "- $label: (no preload)"
        fi
      done
    } >"$work/table.md"
    cat "$work/table.md"
    if [ -n "$markdown" ]; then cp "$work/table.md" "$markdown"; fi
    ;;
  update)
    {
      echo "# Golden instruction counts per malloc+free pair of hakmem (bench/instructions.sh)."
      echo "# ctest perf_golden.instructions fails when a figure grows by more than max(3%, 2)."
      echo "# Regenerate: bench/instructions.sh --update-golden [--build DIR]"
      echo "# Made $(date -u '+%Y-%m-%d') at $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), $(valgrind --version), $(compiler)"
      for spec in "${allocs[@]}"; do
        IFS='|' read -r label _ _ <<<"$spec"
        for wl in "${wl_names[@]}"; do echo "$(golden_key "$label") $wl ${fig[$label/$wl]}"; done
      done
    } >"$golden"
    cat "$golden"
    log "wrote $golden (${elapsed} s)"
    ;;
  check)
    [ -f "$golden" ] || { log "no golden file $golden (bench/instructions.sh --update-golden)"; exit 1; }
    fail=0 seen=0
    for spec in "${allocs[@]}"; do
      IFS='|' read -r label _ _ <<<"$spec"
      key=$(golden_key "$label")
      for wl in "${wl_names[@]}"; do
        g=$(awk -v k="$key" -v w="$wl" '$1 == k && $2 == w { print $3 }' "$golden")
        now=${fig[$label/$wl]}
        if [ -z "$g" ]; then
          echo "MISSING  $key $wl: $now per pair, no golden figure"
          fail=1
          continue
        fi
        seen=$((seen + 1))
        verdict=$(awk -v g="$g" -v n="$now" 'BEGIN {
          tol = g * 0.03; if (tol < 2) tol = 2
          if (n > g + tol) print "FAIL"; else if (n < g - tol) print "LOWER"; else print "ok"
        }')
        case "$verdict" in
          FAIL) echo "FAIL     $key $wl: $now per pair, golden $g (more than max(3%, 2) above)"; fail=1 ;;
          LOWER) echo "NOTE     $key $wl: $now per pair, golden $g: well below; lower the golden (bench/instructions.sh --update-golden)" ;;
          *) echo "ok       $key $wl: $now per pair, golden $g" ;;
        esac
      done
    done
    log "$seen figures compared in ${elapsed} s"
    exit $fail
    ;;
esac
