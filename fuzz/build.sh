#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build (https://google.github.io/oss-fuzz/getting-started/new-project-guide/).
# Inputs: $CC $CXX $CFLAGS $CXXFLAGS (sanitizer + coverage flags), $LIB_FUZZING_ENGINE,
# $OUT; optional $WORK (scratch, default a temporary directory). The source tree is the
# one this script is in ($SRC/hakmem in the builder image).
# Output in $OUT: fuzz_ops fuzz_bad_free fuzz_api, and per target <target>_seed_corpus.zip
# (fuzz/corpus/<target> plus the inputs of fuzz/regressions/<target>), <target>.options
# and <target>.dict.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${OUT:?}" "${CC:?}" "${CXX:?}" "${LIB_FUZZING_ENGINE:?}"
build=${WORK:-$(mktemp -d)}/hakmem-fuzz-build
targets=(fuzz_ops fuzz_bad_free fuzz_api)

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# Build type "None": no optimisation flags beyond the sanitizer build's own $CFLAGS.
cmake -S "$repo" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="${CFLAGS:-}" -DCMAKE_CXX_FLAGS="${CXXFLAGS:-}" \
  -DHAKMEM_BUILD_TESTS=OFF -DHAKMEM_BUILD_BENCH=OFF -DHAKMEM_BUILD_FUZZ=ON \
  -DHAKMEM_FUZZ_EXTERNAL_FLAGS=ON -DHAKMEM_FUZZ_ENGINE="$LIB_FUZZING_ENGINE"
cmake --build "$build" --target "${targets[@]}" -j "$(nproc)"

mkdir -p "$OUT"
for t in "${targets[@]}"; do
  cp "$build/fuzz/$t" "$OUT/"
  cp "$repo/fuzz/$t.options" "$OUT/"
  [ -f "$repo/fuzz/$t.dict" ] && cp "$repo/fuzz/$t.dict" "$OUT/"
  rm -f "$OUT/${t}_seed_corpus.zip"
  seeds=()
  for f in "$repo/fuzz/corpus/$t"/* "$repo/fuzz/regressions/$t"/*; do
    [ -f "$f" ] || continue
    case "$f" in *.trace|*.txt|*.md) continue ;; esac
    seeds+=("$f")
  done
  if [ ${#seeds[@]} -gt 0 ]; then
    if command -v zip >/dev/null; then
      zip -q -j "$OUT/${t}_seed_corpus.zip" "${seeds[@]}"
    else
      python3 - "$OUT/${t}_seed_corpus.zip" "${seeds[@]}" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for f in sys.argv[2:]:
        z.write(f, os.path.basename(f))
PY
    fi
  fi
done
echo "fuzz/build.sh: ${targets[*]} in $OUT"
