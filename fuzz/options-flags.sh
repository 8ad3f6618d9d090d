#!/usr/bin/env bash
# The libFuzzer flags of a <target>.options file (the file OSS-Fuzz and ClusterFuzzLite
# read), one per line: `key = value` under [libfuzzer] -> -key=value. overnight.sh,
# ctest-smoke.sh and ctest-ossfuzz-build.sh run the targets with them, so none drifts.
#   options-flags.sh FILE        (a missing file: no flags)
set -euo pipefail
[ -f "$1" ] || exit 0
sed -n '/^\[libfuzzer\]/,/^\[/{s/^\([a-z_]*\) *= *\(.*[^ ]\) *$/-\1=\2/p}' "$1"
