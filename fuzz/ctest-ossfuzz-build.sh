#!/usr/bin/env bash
# ctest fuzz.ossfuzz_build: runs fuzz/build.sh the way OSS-Fuzz / ClusterFuzzLite do (an
# ASan + libFuzzer build: $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $SRC $OUT $WORK,
# all in a scratch directory), checks what lands in $OUT, and runs each target for 100
# inputs from its seed corpus the way the runner image would.
#   ctest-ossfuzz-build.sh REPO
set -euo pipefail
repo=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/out" "$tmp/work"
ln -s "$repo" "$tmp/src/hakmem"

export SRC=$tmp/src OUT=$tmp/out WORK=$tmp/work
export CC=clang CXX=clang++
export CFLAGS="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -fsanitize=address -fsanitize-address-use-after-scope -fsanitize=fuzzer-no-link"
export CXXFLAGS="$CFLAGS"
export LIB_FUZZING_ENGINE=-fsanitize=fuzzer
(cd "$SRC/hakmem" && bash "$SRC/hakmem/fuzz/build.sh")

status=0
for t in fuzz_ops fuzz_bad_free fuzz_api; do
  for f in "$t" "$t.options" "${t}_seed_corpus.zip" "$t.dict"; do
    [ -e "$OUT/$f" ] || { echo "FAIL: \$OUT/$f missing"; status=1; }
  done
  [ -x "$OUT/$t" ] || continue
  mkdir -p "$tmp/seeds/$t" "$tmp/run/$t"
  if command -v unzip >/dev/null; then
    unzip -q -o "$OUT/${t}_seed_corpus.zip" -d "$tmp/seeds/$t"
  else
    python3 -m zipfile -e "$OUT/${t}_seed_corpus.zip" "$tmp/seeds/$t"
  fi
  # The runner's defaults: the flags of the copied .options, the dictionary, a 25 s timeout.
  mapfile -t flags < <("$repo/fuzz/options-flags.sh" "$OUT/$t.options")
  # Regression inputs of open bugs are in the seed zip too; run only the corpus here.
  rm -f "$tmp/seeds/$t"/oom-* "$tmp/seeds/$t"/crash-* "$tmp/seeds/$t"/timeout-*
  if (cd "$OUT" && HAKMEM_FUZZ_TRACE_DIR="$tmp/run/$t" \
        "./$t" -runs=100 -seed=1 -timeout=25 "${flags[@]}" -dict="$t.dict" \
        -artifact_prefix="$tmp/run/$t/" "$tmp/run/$t" "$tmp/seeds/$t" >"$tmp/$t.log" 2>&1); then
    echo "ok: $t ($(grep -c . "$tmp/$t.log") log lines, $(ls "$tmp/seeds/$t" | wc -l) seeds)"
  else
    echo "FAIL: $t"; tail -30 "$tmp/$t.log"; status=1
  fi
done
exit $status
