#!/usr/bin/env bash
# Encodes the readable seeds (fuzz/seeds/<target>/NAME.trace or NAME.txt) into the
# committed corpus (fuzz/corpus/<target>/seed-NAME) and writes the dictionaries
# (fuzz/<target>.dict). ctest fuzz.seeds checks both are current.
#   fuzz/make-seeds.sh [PATH/TO/hak-fuzz-codec]     (default: build/fuzz/fuzz/hak-fuzz-codec)
set -euo pipefail
cd "$(dirname "$0")"
codec=${1:-../build/fuzz/fuzz/hak-fuzz-codec}
[ -x "$codec" ] || { echo "no $codec: build the fuzz configuration first (fuzz/README.md)" >&2; exit 2; }
for dir in seeds/*/; do
  target=$(basename "$dir")
  mkdir -p "corpus/$target"
  for f in "$dir"*; do
    stem=$(basename "${f%.*}")
    case "$target" in
      fuzz_api) "$codec" encode-api "$f" "corpus/$target/seed-$stem" ;;
      fuzz_ops) "$codec" encode ops "$f" "corpus/$target/seed-$stem" ;;
      fuzz_bad_free) "$codec" encode bad_free "$f" "corpus/$target/seed-$stem" ;;
    esac
    echo "corpus/$target/seed-$stem ($(wc -c <"corpus/$target/seed-$stem") bytes)"
  done
done
for t in ops bad_free api; do
  "$codec" dict $t >"fuzz_$t.dict"
  echo "fuzz_$t.dict ($(grep -c = "fuzz_$t.dict") entries)"
done
