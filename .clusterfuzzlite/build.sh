#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz entry point: the build itself is fuzz/build.sh.
exec "$SRC/hakmem/fuzz/build.sh"
