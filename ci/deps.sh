#!/usr/bin/env bash
# Installs the Debian 12 packages the build, tests and benchmarks need. Idempotent;
# installs only what is missing. Needs root (or sudo).
set -euo pipefail
pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev librapidcheck-dev libgtest-dev libgmock-dev
      libbenchmark-dev valgrind libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev
      sqlite3 git python3 python3-matplotlib pkg-config procps clang-format
      python3-yaml spin z3 python3-z3 libz3-dev relacy-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
