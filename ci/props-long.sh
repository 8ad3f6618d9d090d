#!/usr/bin/env bash
# ci/props-long.sh HOURS: runs the property suites over and over with fresh seeds and a
# large case count until HOURS have passed (default 8), printing progress. Stops at the
# first failure, keeping rapidcheck's output (shrunk counterexample, reproduce string,
# the trace) in props/failures/; put the trace into model/regressions/NAME.trace so ctest
# replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-8}
cases=${PROPS_CASES:-2000}
ci/deps.sh >&2
cmake --preset release >/dev/null
cmake --build --preset release --target hakmem_props >/dev/null
bin=build/release/props/hakmem_props
end=$(( $(date +%s) + $(awk "BEGIN{print int($hours*3600)}") ))
mkdir -p props/failures
round=0
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  out=props/failures/round-$round-seed-$seed.log
  t0=$(date +%s)
  if RC_PARAMS="max_success=$cases seed=$seed" "$bin" >"$out" 2>&1; then
    echo "props-long: round $round (seed $seed, $cases cases per property) ok in $(( $(date +%s) - t0 ))s;" \
         "$(( (end - $(date +%s)) / 60 )) min left"
    rm -f "$out"
  else
    echo "props-long: round $round FAILED (seed $seed); output in $out" >&2
    grep -A30 "disagreement" "$out" | head -40 >&2 || true
    exit 1
  fi
done
echo "props-long: $round rounds, no failure"
