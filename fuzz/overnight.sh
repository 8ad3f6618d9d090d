#!/usr/bin/env bash
# Long fuzzing run of every target (fuzz/README.md).
#
#   fuzz/overnight.sh [HOURS]          (default 8; fractions work: 0.25 = 15 minutes)
#
# 1. builds the fuzz configuration (clang, build/fuzz);
# 2. runs fuzz_ops, fuzz_bad_free and fuzz_api side by side for HOURS (libFuzzer fork
#    mode, crashes / OOMs / timeouts recorded and the run goes on), printing one status
#    line per target every STATUS_EVERY seconds: execs/s, cov, ft, corpus, crashes;
# 3. merges what the run found into fuzz/corpus/<target> (-merge=1: only inputs with new
#    coverage are added; MINIMIZE=1 rewrites the corpus to a minimal set, seeds kept);
# 4. minimises every crash / OOM / timeout into fuzz/regressions/<target>/ (plus, for
#    fuzz_ops and fuzz_bad_free, the failing .trace that hak-replay re-runs, and for
#    fuzz_api the calls as text);
# 5. prints a summary per target.
# Ctrl-C stops the fuzzing early and still does 3 to 5.
#
# Environment: JOBS (fork workers per target, default max(1, cores / 3)), STATUS_EVERY
# (seconds, default 60), WORK_DIR (default build/fuzz/overnight-DATE), BUILD_DIR (default
# build/fuzz), MINIMIZE=1, MAX_REPRODUCERS (kinds of failure per target, default 20),
# ASAN_OPTIONS (default malloc_context_size=0), plus anything the targets read
# (HAKMEM_FUZZ_API_GRAY_MAX, ...).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
hours=${1:-8}
seconds=$(awk -v h="$hours" 'BEGIN { s = int(h * 3600); print (s < 1 ? 1 : s) }')
targets=(fuzz_ops fuzz_bad_free fuzz_api)
cores=$(nproc)
jobs=${JOBS:-$(( cores / 3 > 0 ? cores / 3 : 1 ))}
status_every=${STATUS_EVERY:-60}
build=${BUILD_DIR:-build/fuzz}
work=${WORK_DIR:-build/fuzz/overnight-$(date +%Y%m%d-%H%M%S)}
max_repro=${MAX_REPRODUCERS:-20}
# ASan keeps no allocation stacks unless asked: hakmem's own blocks never had one (hakmem
# maps its memory; ASan sees only its poisoning), and the stacks of the model's and
# libFuzzer's allocations cost about 8% of fuzz_ops' time.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- 1. build ---
log "building in $build"
if ! CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DHAKMEM_BUILD_FUZZ=ON -DHAKMEM_BUILD_BENCH=OFF >"$build.configure.log" 2>&1; then
  cat "$build.configure.log"; exit 2
fi
rm -f "$build.configure.log"
cmake --build "$build" --target fuzzers hak-fuzz-codec -j "$cores" || exit 2
bin=$repo/$build/fuzz
mkdir -p "$work"
work=$(cd "$work" && pwd)

common_flags() {  # target
  local f
  mapfile -t f < <("$repo/fuzz/options-flags.sh" "$repo/fuzz/$1.options")
  f+=(-timeout=25 -rss_limit_mb=3072 -print_final_stats=1)
  [ -f "$repo/fuzz/$1.dict" ] && f+=(-dict="$repo/fuzz/$1.dict")
  printf '%s\n' "${f[@]}"
}

# --- 2. fuzz ---
declare -A pid
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts" "$work/$t/traces"
  mapfile -t flags < <(common_flags "$t")
  (
    cd "$work/$t" || exit 1
    export HAKMEM_FUZZ_TRACE_DIR="$work/$t/traces"
    exec "$bin/$t" "${flags[@]}" -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 \
      -ignore_timeouts=1 -max_total_time="$seconds" -artifact_prefix="$work/$t/artifacts/" \
      "$work/$t/corpus" "$repo/fuzz/corpus/$t"
  ) >"$work/$t/fuzz.log" 2>&1 &
  pid[$t]=$!
done
log "fuzzing ${targets[*]} for $hours h ($seconds s), $jobs worker(s) each; work dir $work"

stopping=0
stop() {
  stopping=1
  for t in "${targets[@]}"; do kill -INT "${pid[$t]}" 2>/dev/null; done
}
trap stop INT TERM

# libFuzzer's status lines ("#N INITED cov: ..." / fork mode "#N: cov: ... corp: ...
# exec/s: ..."): the first one gives the starting coverage and corpus, the last the
# current ones.
status_lines() { grep -aE '^#[0-9]+:?[[:space:]].*cov: ' "$work/$1/fuzz.log" 2>/dev/null; }
field() {  # name line -> the number after "name:" (or "name ")
  sed -nE "s/.*$1:? ([0-9]+).*/\\1/p" <<<"$2"
}
last_status() {  # target -> "execs/s cov ft corp crashes cov0 corp0"
  local first last
  first=$(status_lines "$1" | head -1)
  last=$(status_lines "$1" | tail -1)
  local eps cov ft corp crashes cov0 corp0
  eps=$(field 'exec\/s' "$last")
  cov=$(field cov "$last")
  ft=$(field ft "$last")
  corp=$(field corp "$last")
  cov0=$(field cov "$first")
  corp0=$(field corp "$first")
  crashes=$(find "$work/$1/artifacts" -maxdepth 1 -type f | wc -l)
  echo "${eps:-0} ${cov:-0} ${ft:-0} ${corp:-0} $crashes ${cov0:-${cov:-0}} ${corp0:-${corp:-0}}"
}
print_status() {
  for t in "${targets[@]}"; do
    read -r eps cov ft corp crashes cov0 corp0 < <(last_status "$t")
    printf '[%s]   %-14s exec/s %6s  cov %6s (%+d)  ft %7s  corpus %6s (%+d)  crashes %s\n' \
      "$(date +%H:%M:%S)" "$t" "$eps" "$cov" "$(( cov - cov0 ))" "$ft" "$corp" \
      "$(( corp - corp0 ))" "$crashes"
  done
}

start=$(date +%s)
while :; do
  running=0
  for t in "${targets[@]}"; do kill -0 "${pid[$t]}" 2>/dev/null && running=1; done
  [ $running -eq 0 ] && break
  for ((i = 0; i < status_every && running; i++)); do
    sleep 1
    running=0
    for t in "${targets[@]}"; do kill -0 "${pid[$t]}" 2>/dev/null && running=1; done
  done
  log "$(( ($(date +%s) - start) / 60 )) min of $(( seconds / 60 ))"
  print_status
done
for t in "${targets[@]}"; do wait "${pid[$t]}" 2>/dev/null; done
trap - INT TERM
elapsed=$(( $(date +%s) - start ))
[ $stopping -eq 1 ] && log "stopped early after $elapsed s"

declare -A final_status
for t in "${targets[@]}"; do final_status[$t]=$(last_status "$t"); done

# --- 3. merge into the committed corpus ---
declare -A added
for t in "${targets[@]}"; do
  mapfile -t flags < <(common_flags "$t")
  dest=$repo/fuzz/corpus/$t
  before=$(find "$dest" -maxdepth 1 -type f | wc -l)
  if [ "${MINIMIZE:-0}" = 1 ]; then
    fresh=$work/$t/minimized
    rm -rf "$fresh"; mkdir -p "$fresh"
    cp "$dest"/seed-* "$fresh"/ 2>/dev/null
    mkdir -p "$work/$t/old-corpus"
    find "$dest" -maxdepth 1 -type f ! -name 'seed-*' -exec cp {} "$work/$t/old-corpus/" \;
    (cd "$work/$t" && HAKMEM_FUZZ_TRACE_DIR="$work/$t/traces" \
      "$bin/$t" "${flags[@]}" -merge=1 "$fresh" "$work/$t/old-corpus" "$work/$t/corpus") \
      >"$work/$t/merge.log" 2>&1
    if grep -q 'MERGE-OUTER: .* new files' "$work/$t/merge.log"; then
      find "$dest" -maxdepth 1 -type f ! -name 'seed-*' -delete
      find "$fresh" -maxdepth 1 -type f ! -name 'seed-*' -exec cp {} "$dest/" \;
    else
      log "$t: merge failed (see $work/$t/merge.log); corpus left as it was"
    fi
  else
    (cd "$work/$t" && HAKMEM_FUZZ_TRACE_DIR="$work/$t/traces" \
      "$bin/$t" "${flags[@]}" -merge=1 "$dest" "$work/$t/corpus") >"$work/$t/merge.log" 2>&1 ||
      log "$t: merge failed (see $work/$t/merge.log)"
  fi
  after=$(find "$dest" -maxdepth 1 -type f | wc -l)
  added[$t]=$(( after - before ))
  log "$t: corpus $before -> $after files"
done

# --- 4. minimise crashes into fuzz/regressions ---
# One reproducer per kind of failure: artifacts whose first report line matches (numbers
# and addresses aside) one already kept in this run are counted, not kept again.
signature() {  # run log -> the failure's first report line, numbers masked
  local log=$1 line
  line=$(grep -a -A1 'disagreement at op' "$log" | sed -n 2p)
  [ -n "$line" ] || line=$(grep -aE -m1 '^fuzz_api: (hakmem|glibc): |runtime error:|^SUMMARY: |ERROR: libFuzzer|ERROR: AddressSanitizer' "$log")
  sed -E 's/0x[0-9a-fA-F]+/H/g; s/[0-9]+/N/g' <<<"$line"
}
run_once() {  # target input dir -> runs the input with traces in dir, log in dir/run.log
  (cd "$3" && HAKMEM_FUZZ_TRACE_DIR="$3" "$bin/$1" "${flags[@]}" "$2") >"$3/run.log" 2>&1
}
declare -A repro dups
for t in "${targets[@]}"; do
  mapfile -t flags < <(common_flags "$t")
  repro[$t]=0
  dups[$t]=0
  declare -A seen=()
  dest=$repo/fuzz/regressions/$t
  for a in "$work/$t/artifacts"/*; do
    [ -f "$a" ] || continue
    kind=$(basename "$a" | sed 's/-.*//')  # crash, oom, timeout, leak, slow-unit
    [ "$kind" = slow ] && continue
    raw=$(mktemp -d)
    run_once "$t" "$a" "$raw"
    sig=$(signature "$raw/run.log")
    rm -rf "$raw"
    if [ -z "$sig" ]; then
      log "$t: $(basename "$a") does not fail when run alone (left in $work/$t/artifacts)"
      continue
    fi
    if [ -n "${seen[$sig]:-}" ]; then
      dups[$t]=$(( ${dups[$t]} + 1 ))
      continue
    fi
    seen[$sig]=1
    if [ "${repro[$t]}" -ge "$max_repro" ]; then
      log "$t: more than $max_repro kinds of failure; the rest stay in $work/$t/artifacts"
      break
    fi
    min=$work/$t/min-$(basename "$a")
    (cd "$work/$t" && HAKMEM_FUZZ_TRACE_DIR="$work/$t/traces" \
      "$bin/$t" "${flags[@]}" -minimize_crash=1 -max_total_time=120 -runs=100000 \
      -exact_artifact_path="$min" "$a") >"$work/$t/minimize.log" 2>&1
    [ -s "$min" ] || cp "$a" "$min"
    tdir=$(mktemp -d)
    run_once "$t" "$min" "$tdir"
    if [ "$(signature "$tdir/run.log")" != "$sig" ]; then  # minimised into another failure
      cp "$a" "$min"
      run_once "$t" "$min" "$tdir"
    fi
    name=$kind-$(sha1sum "$min" | cut -c1-16)
    mkdir -p "$dest"
    [ -e "$dest/$name" ] || repro[$t]=$(( ${repro[$t]} + 1 ))
    cp "$min" "$dest/$name"
    # The readable form: the failing trace (lockstep targets) or the calls, with the report.
    tr=$(ls "$tdir"/*.trace 2>/dev/null | head -1)
    if [ -n "$tr" ]; then
      cp "$tr" "$dest/$name.trace"
    else
      { grep -aE -m8 '^fuzz_api: (hakmem|glibc|the oracle)|runtime error:|^SUMMARY: |ERROR: ' "$tdir/run.log" | sed 's/^/# /'
        if [ "$t" = fuzz_api ]; then
          "$bin/hak-fuzz-codec" decode-api "$dest/$name"
        else
          "$bin/hak-fuzz-codec" decode "${t#fuzz_}" "$dest/$name"
        fi; } >"$dest/$name.txt"
    fi
    rm -rf "$tdir"
    log "$t: $kind reproducer fuzz/regressions/$t/$name: $sig"
  done
  unset seen
done

# --- 5. summary ---
echo
echo "=== fuzz/overnight.sh summary ($elapsed s of fuzzing, $jobs worker(s) per target; $work)"
printf '  %-14s %8s %13s %8s %15s %11s %8s %12s %10s\n' target exec/s cov ft "run corpus" \
  "merged" crashes reproducers duplicates
for t in "${targets[@]}"; do
  read -r eps cov ft corp crashes cov0 corp0 <<<"${final_status[$t]}"
  printf '  %-14s %8s %13s %8s %15s %11s %8s %12s %10s\n' "$t" "$eps" "$cov0 -> $cov" "$ft" \
    "$corp0 -> $corp" "+${added[$t]}" "$crashes" "${repro[$t]}" "${dups[$t]}"
done
echo "  (exec/s: libFuzzer's last figure, all workers of a target; cov / run corpus: the first"
echo "  status line -> the last; merged: files added to fuzz/corpus/<target>)"
total=0
for t in "${targets[@]}"; do total=$(( total + ${repro[$t]} )); done
if [ $total -gt 0 ]; then
  echo "New reproducers in fuzz/regressions/ (replayed by ctest -R fuzz); look at the .trace /"
  echo ".txt next to each. Then commit fuzz/corpus and fuzz/regressions."
  exit 1
fi
echo "No new crashes. New corpus entries are in fuzz/corpus/<target> (commit them)."
