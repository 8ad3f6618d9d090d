#!/usr/bin/env bash
# The benchmark job (README): installs what it needs, builds the release preset, then runs
# each workload under every allocator side by side and writes bench/results/latest.md (and
# the chart bench/results/latest.png when python3-matplotlib is there).
#
#   ci/bench.sh                       all workloads, 5 repeats, 10M operations
#   ci/bench.sh --quick               3 repeats, 2M operations, real at half scale
#   ci/bench.sh --only NAME[,NAME]    some workloads: mixed-400 mixed-8192 c7 tiny-churn fill-empty
#                                     prodcons server xthread-2 xthread-4 xthread-8
#                                     xthread-16 thread-churn stranded large-churn-16
#                                     large-churn-256 large-churn-16-t2 large-churn-256-t2
#                                     real phase76 grow ("mixed" = both mixed-*, "xthread" =
#                                     every xthread-*, "large" = every large-churn-*)
#   ci/bench.sh --repeats N --ops N   override the counts (--ops N: mixed-* and c7 N,
#                                     tiny-churn 5N, prodcons N/2, server N, xthread-T N/5
#                                     blocks over all threads, thread-churn N/50000 rounds,
#                                     large-churn-* N/500 operations per thread)
#   ci/bench.sh --variant 'LABEL:VAR=VAL[,VAR=VAL...]'
#                                     one more hakmem column with these environment
#                                     variables (repeatable), e.g.
#                                     --variant 'hakmem (warm 0):HAKMEM_WARM_REGIONS=0'
#   ci/bench.sh --no-build            skip ci/deps.sh and the build (use build/release as is)
#   ci/bench.sh --instructions        instead of timing: instructions per malloc+free pair
#                                     under callgrind for every allocator on mixed-400, c7,
#                                     tiny-churn and tiny-churn-empty (bench/instructions.sh
#                                     explains the method); a markdown table on stdout and
#                                     in bench/results/instructions.md
#
# Workloads (bench/*.cc; each prints one RESULT line, see its header comment):
#   mixed-400, mixed-8192  one thread, random sizes 16..1024 B, working set of 400/8192
#   c7                     the same with 1024 B only
#   tiny-churn             malloc(16) then free in a tight loop (one more block kept live)
#   fill-empty             4000 x malloc(64), then free them all, in a loop: a region that
#                          empties and fills again (the purge delay's case)
#   prodcons               one thread allocates 16 B..256 KiB, another frees (remote frees)
#   server                 larson-like: two threads replace objects of mixed lifetimes and
#                          hand batches of them to each other
#   xthread-N              N threads in a ring, each frees what the previous allocated
#                          (16 B..4 KiB): every free remote, more threads than cores
#   thread-churn           rounds of 4 threads that allocate, free, free the previous
#                          round's survivors (abandoned regions) and exit
#   stranded               a builder mallocs 100 MB of 64 B nodes, two threads free them,
#                          the builder goes on with 32 B blocks only: RSS after (is memory
#                          freed by other threads given back without its size in use?)
#   large-churn-W[-t2]     one (two) threads, each replacing random blocks of a working set
#                          of W (16, 256) blocks of 64 KiB..8 MiB (log-uniform), every
#                          page written: large blocks reused, thousand ops/s, peak RSS
#   real                   python3 running bench/alloc_heavy.py (wall seconds, lower is better)
#   phase76                1M malloc(16), free all: is the memory given back? (RSS right
#                          after the free, and 100 ms later after a little more work)
#   grow                   one thread fills 1 GiB with malloc(16) blocks and keeps them: ns per
#                          malloc in the first and the last 16 MiB (is the cost flat?)
#
# Allocators: glibc (no preload), hakmem (build/release/libhakmem.so), mimalloc, jemalloc,
# tcmalloc (Debian packages, LD_PRELOAD); a missing peer is skipped with a warning. For
# mixed-* and c7 there is also "hakmem (ULTRA off)" (HAKMEM_TINY_C7_ULTRA=0). HAKMEM_*
# variables set in the caller's environment reach every hakmem run (the others ignore
# them) and are recorded in the report.
#
# Runs are interleaved: in round r every allocator runs once, in an order rotated by r, so
# drifting machine load spreads over all of them. The report gives the median of the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
invocation="ci/bench.sh${*:+$(printf ' %q' "$@")}"  # quoted so it can be pasted back

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

repeats=5 ops=10000000 only="" build=1 instructions=0 real_scale=1
repeats_set=0 ops_set=0
declare -a extra_variants=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) [ $repeats_set -eq 1 ] || repeats=3; [ $ops_set -eq 1 ] || ops=2000000; real_scale=0.5 ;;
    --only) [ $# -ge 2 ] || usage; only=$2; shift ;;
    --repeats) [ $# -ge 2 ] || usage; repeats=$2; repeats_set=1; shift ;;
    --ops) [ $# -ge 2 ] || usage; ops=$2; ops_set=1; shift ;;
    --variant) [ $# -ge 2 ] || usage; extra_variants+=("$2"); shift ;;
    --no-build) build=0 ;;
    --instructions) instructions=1 ;;
    -h|--help) usage ;;
    *) echo "bench: unknown argument: $1" >&2; usage ;;
  esac
  shift
done
[[ $repeats =~ ^[1-9][0-9]*$ && $ops =~ ^[1-9][0-9]*$ ]] || { echo "bench: bad --repeats/--ops" >&2; exit 2; }

log() { echo "bench: $*" >&2; }

# --- build ---
if [ $build -eq 1 ]; then
  ci/deps.sh >&2
  cmake --preset release >&2
  cmake --build --preset release -j "$(nproc)" >&2
fi
bin=$root/build/release/bench
hakmem_so=$root/build/release/libhakmem.so
for f in "$bin/bench_mixed" "$bin/bench_phase76" "$bin/bench_churn" "$bin/bench_prodcons" \
  "$bin/bench_server" "$bin/bench_xthread" "$bin/bench_thread_churn" "$bin/bench_stranded" \
  "$bin/bench_large_churn" "$bin/bench_grow" \
  "$bin/bench_real" "$hakmem_so"; do
  [ -x "$f" ] || [ -f "$f" ] || { log "missing $f (build failed?)"; exit 1; }
done

# Debian's python3 (where python3-matplotlib lives) for the real workload and the report,
# whatever else is first on PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)

# --- workloads: name and command (relative to the repository) ---
declare -a wl_names=() wl_cmds=()
add_workload() { wl_names+=("$1"); wl_cmds+=("$2"); }
add_workload mixed-400 "build/release/bench/bench_mixed --ws 400 --ops $ops --name mixed"
add_workload mixed-8192 "build/release/bench/bench_mixed --ws 8192 --ops $ops --name mixed"
add_workload c7 "build/release/bench/bench_mixed --ws 400 --ops $ops --min 1024 --max 1024 --name c7"
add_workload tiny-churn "build/release/bench/bench_churn --size 16 --keep 1 --ops $((ops * 5)) --name tiny-churn"
add_workload fill-empty "build/release/bench/bench_churn --size 64 --batch 4000 --ops $((ops * 2)) --name fill-empty"
add_workload prodcons "build/release/bench/bench_prodcons --ops $((ops > 1 ? ops / 2 : 1))"
add_workload server "build/release/bench/bench_server --ops $ops"
for n in 2 4 8 16; do
  add_workload xthread-$n "build/release/bench/bench_xthread --threads $n --ops $((ops / (5 * n) > 0 ? ops / (5 * n) : 1))"
done
add_workload thread-churn "build/release/bench/bench_thread_churn --rounds $((ops / 50000 > 0 ? ops / 50000 : 1))"
add_workload stranded "build/release/bench/bench_stranded --mb 100 --workers 2 --ms 300"
for w in 16 256; do
  for t in 1 2; do
    add_workload "large-churn-$w$([ $t -eq 1 ] || echo -t$t)" \
      "build/release/bench/bench_large_churn --ws $w --threads $t --ops $((ops / 500 > 0 ? ops / 500 : 1))"
  done
done
add_workload real "build/release/bench/bench_real --name real -- $py -I bench/alloc_heavy.py --scale $real_scale"
add_workload phase76 "build/release/bench/bench_phase76 --count 1000000 --size 16 --delay-ms 100"
add_workload grow "build/release/bench/bench_grow --bytes $((1 << 30)) --size 16"

selected() {  # workload name -> 0 if --only selects it
  [ -z "$only" ] && return 0
  local w
  for w in ${only//,/ }; do
    [ "$w" = "$1" ] || [ "$w" = "${1%%-*}" ] && return 0
  done
  return 1
}
if [ -n "$only" ]; then
  for w in ${only//,/ }; do
    ok=0
    for n in "${wl_names[@]}"; do [ "$w" = "$n" ] || [ "$w" = "${n%%-*}" ] && ok=1; done
    [ $ok -eq 1 ] || { log "unknown workload '$w' (have: ${wl_names[*]})"; exit 2; }
  done
fi

# --- allocators: label, preload library, extra environment, workloads it runs on ---
declare -a al_labels=() al_preloads=() al_envs=() al_scopes=()
add_alloc() { al_labels+=("$1"); al_preloads+=("$2"); al_envs+=("$3"); al_scopes+=("$4"); }

find_lib() {  # soname -> path (ldconfig cache, then the multiarch directory)
  local p
  p=$(ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }')
  [ -n "$p" ] || p=/usr/lib/x86_64-linux-gnu/$1
  [ -f "$p" ] && echo "$p"
}
preload_works() {  # ld.so only warns when a preload fails; a run would silently be glibc
  local err
  err=$(LD_PRELOAD=$1 /bin/true 2>&1) || return 1
  [ -z "$err" ]
}
add_peer() {  # label soname
  local p
  if p=$(find_lib "$2") && preload_works "$p"; then
    add_alloc "$1" "$p" "" all
  else
    log "WARNING: $1 ($2) not found or not preloadable; skipped"
  fi
}

add_alloc glibc "" "" all
preload_works "$hakmem_so" || { log "$hakmem_so cannot be preloaded"; exit 1; }
add_alloc hakmem "$hakmem_so" "" all
add_alloc "hakmem (ULTRA off)" "$hakmem_so" "HAKMEM_TINY_C7_ULTRA=0" "mixed-400 mixed-8192 c7"
add_alloc "hakmem (purge delay 0)" "$hakmem_so" "HAKMEM_PURGE_DELAY_MS=0" "fill-empty thread-churn real phase76"
for v in ${extra_variants[@]+"${extra_variants[@]}"}; do
  [[ $v == *:*=* ]] || { log "bad --variant '$v' (want 'LABEL:VAR=VAL[,VAR=VAL...]')"; exit 2; }
  add_alloc "${v%%:*}" "$hakmem_so" "$(echo "${v#*:}" | tr ',' ' ')" all
done
add_peer mimalloc libmimalloc.so.2
add_peer jemalloc libjemalloc.so.2
add_peer tcmalloc libtcmalloc_minimal.so.4

in_scope() {  # alloc index, workload name
  local s=${al_scopes[$1]}
  [ "$s" = all ] || [[ " $s " == *" $2 "* ]]
}

# --- --instructions: callgrind counts instead of timings (bench/instructions.sh) ---
if [ $instructions -eq 1 ]; then
  [ -z "$only" ] || log "note: --only does not apply to --instructions (fixed workloads)"
  declare -a ispec=()
  for ai in "${!al_labels[@]}"; do
    ispec+=(--alloc "${al_labels[$ai]}|${al_preloads[$ai]}|${al_envs[$ai]}")
  done
  mkdir -p bench/results
  t_start=$(date +%s)
  bench/instructions.sh --build build/release "${ispec[@]}" --markdown bench/results/instructions.md
  log "wrote bench/results/instructions.md; $(($(date +%s) - t_start)) s"
  exit 0
fi

# --- run ---
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
raw=$work/raw.tsv
: >"$raw"
failures=0

run_one() {  # workload index, alloc index, round -> appends one line to $raw
  local wi=$1 ai=$2 r=$3
  local label=${al_labels[$ai]} pre=${al_preloads[$ai]}
  local json=$work/stats.json out=$work/out err=$work/err rc=0
  # timeout runs outside the preload (else hakmem in it would also write the JSON), env
  # sets the variables and execs the workload.
  local -a envv=(timeout 600 env -u LD_PRELOAD)
  rm -f "$json"
  if [ -n "$pre" ]; then envv+=("LD_PRELOAD=$pre"); fi
  if [ "$pre" = "$hakmem_so" ]; then envv+=("HAKMEM_STATS_JSON=$json"); fi
  # shellcheck disable=SC2206  # the variant's VAR=VAL words, split on purpose
  envv+=(${al_envs[$ai]})
  # shellcheck disable=SC2086  # the command's words, split on purpose
  "${envv[@]}" ${wl_cmds[$wi]} >"$out" 2>"$err" || rc=$?
  local result stats=""
  result=$(grep -m1 '^RESULT ' "$out" || true)
  [ -f "$json" ] && stats=$(tr -d '\n\t' <"$json")
  if [ $rc -ne 0 ] || [ -z "$result" ]; then
    failures=$((failures + 1))
    log "WARNING: ${wl_names[$wi]} under $label failed (exit $rc):"
    tail -n 5 "$err" | sed 's/^/    /' >&2
  elif [ -s "$err" ]; then
    log "note: ${wl_names[$wi]} under $label wrote to stderr:"
    tail -n 5 "$err" | sed 's/^/    /' >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${wl_names[$wi]}" "$label" "$r" "$rc" "$result" "$stats" >>"$raw"
  # progress: the headline number of this run
  local show
  local pat='mops=[0-9.]*\|rss_after_kb=[0-9]*'
  [[ $result == *" kops="* ]] && pat='kops=[0-9.]*\|peak_rss_kb=[0-9]*'
  [[ $result == *" mops="* ]] || pat=' seconds=[0-9.]*\|rss_after_kb=[0-9]*\|peak_rss_kb=[0-9]*'
  show=$(echo "$result" | grep -o "$pat" | tr '\n' ' ' || true)
  printf 'bench:   %-12s round %d/%d  %-22s %s\n' "${wl_names[$wi]}" "$((r + 1))" "$repeats" "$label" \
    "${show:-FAILED}" >&2
}

t_start=$(date +%s)
load_start=$(cut -d' ' -f1 /proc/loadavg)
for wi in "${!wl_names[@]}"; do
  selected "${wl_names[$wi]}" || continue
  declare -a idx=()
  for ai in "${!al_labels[@]}"; do in_scope "$ai" "${wl_names[$wi]}" && idx+=("$ai"); done
  n=${#idx[@]}
  log "${wl_names[$wi]}: ${wl_cmds[$wi]}  ($n allocators x $repeats rounds)"
  for ((r = 0; r < repeats; r++)); do
    for ((k = 0; k < n; k++)); do
      run_one "$wi" "${idx[$(((k + r) % n))]}" "$r"
    done
  done
done
elapsed=$(($(date +%s) - t_start))
load_end=$(cut -d' ' -f1 /proc/loadavg)

# --- report ---
meta=$work/meta.tsv
{
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  printf 'kernel\t%s\n' "$(uname -sr)"
  printf 'memory\t%s\n' "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  printf 'compiler\t%s\n' "$(c++ --version | head -n1)"
  printf 'commit\t%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  printf 'versions\t%s\n' "$(dpkg-query -W -f='${Package} ${Version}, ' libc6 libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 2>/dev/null | sed 's/, $//')"
  printf 'invocation\t%s\n' "$invocation"
  printf 'repeats\t%s\n' "$repeats"
  printf 'elapsed\t%s\n' "$elapsed"
  printf 'load\t%s\n' "$load_start at the start, $load_end at the end"
  printf 'hakmem_env\t%s\n' "$(env | grep '^HAKMEM_' | tr '\n' ' ' || true)"
  for ai in "${!al_labels[@]}"; do
    printf 'alloc\t%s\t%s\t%s\t%s\n' "${al_labels[$ai]}" "${al_preloads[$ai]}" "${al_envs[$ai]}" "${al_scopes[$ai]}"
  done
  for wi in "${!wl_names[@]}"; do
    selected "${wl_names[$wi]}" && printf 'workload\t%s\t%s\n' "${wl_names[$wi]}" "${wl_cmds[$wi]}"
  done
} >"$meta"

mkdir -p bench/results
"$py" bench/report.py "$meta" "$raw" --png "$work/latest.png" >"$work/latest.md"
cp "$work/latest.md" bench/results/latest.md
if [ -f "$work/latest.png" ]; then
  cp "$work/latest.png" bench/results/latest.png
else
  rm -f bench/results/latest.png  # report.py warned why; a stale chart would mislead
fi
cp "$raw" bench/results/latest-raw.tmp
cat bench/results/latest.md
log "wrote bench/results/latest.md$([ -f bench/results/latest.png ] && echo ' and latest.png') (raw runs: bench/results/latest-raw.tmp); ${elapsed}s of runs"
if [ $failures -gt 0 ]; then
  log "$failures run(s) failed"
  exit 1
fi
