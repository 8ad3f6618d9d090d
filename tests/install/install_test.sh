#!/usr/bin/env bash
# Installs this build tree into a fresh temporary prefix and uses it the way a downstream
# project would. Run by ctest (tests/install/CMakeLists.txt):
#   install_test.sh find_package|pkg_config
# with the outer build's settings in the environment:
#   CMAKE_COMMAND BUILD_DIR BUILD_CONFIG GENERATOR MAKE_PROGRAM CC CXX LIBDIR VERSION
#   CONSUMER_DIR (tests/install/consumer) BUILT_STATIC BUILT_CORE (the archives this build made)
# Exit status: 0 pass, 1 fail, 77 skip (pkg-config missing).
set -uo pipefail

mode=${1:?usage: install_test.sh find_package|pkg_config}
for v in CMAKE_COMMAND BUILD_DIR BUILD_CONFIG GENERATOR CC CXX LIBDIR VERSION CONSUMER_DIR BUILT_STATIC BUILT_CORE; do
  [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (run this through ctest)" >&2; exit 1; }
done

fail() {
  echo "FAIL [install.$mode]: $*" >&2
  exit 1
}
step() { echo "=== $*"; }
run() {  # echo, run, fail loudly with the command's output
  echo "+ $*"
  "$@" || fail "command failed (status $?): $*"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-install-$mode.XXXXXX") || fail "mktemp"
keep=0
cleanup() { if [ $keep -eq 0 ]; then rm -rf "$tmp"; else echo "(kept $tmp)" >&2; fi; }
trap cleanup EXIT
prefix=$tmp/prefix
libdir=$prefix/$LIBDIR
# Nothing from the caller may steer the consumer to another hakmem.
unset LD_PRELOAD LD_LIBRARY_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR CMAKE_PREFIX_PATH hakmem_DIR
for v in $(env | sed -n 's/^\(HAKMEM_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done

step "install $BUILD_DIR into $prefix"
run "$CMAKE_COMMAND" --install "$BUILD_DIR" --prefix "$prefix" --config "$BUILD_CONFIG"
for f in include/hakmem/hakmem.h include/hakmem/inspect.h \
         "$LIBDIR/libhakmem.so" "$LIBDIR/libhakmem.a" "$LIBDIR/libhakmem_core.a" \
         "$LIBDIR/cmake/hakmem/hakmemConfig.cmake" "$LIBDIR/cmake/hakmem/hakmemConfigVersion.cmake" \
         "$LIBDIR/cmake/hakmem/hakmemTargets.cmake" "$LIBDIR/pkgconfig/hakmem.pc"; do
  [ -e "$prefix/$f" ] || fail "the install lacks $f; installed files:$(cd "$prefix" && find . -type f | sort | sed 's/^/\n  /')"
done
# The installed archives are the ones this build produced (byte for byte).
cmp -s "$BUILT_STATIC" "$libdir/libhakmem.a" || fail "installed libhakmem.a differs from this build's $BUILT_STATIC"
cmp -s "$BUILT_CORE" "$libdir/libhakmem_core.a" || fail "installed libhakmem_core.a differs from this build's $BUILT_CORE"

expect_output() {  # program expected-line [env...]
  local prog=$1 want=$2
  shift 2
  echo "+ $* $prog"
  local out rc
  out=$(env "$@" "$prog" 2>&1)
  rc=$?
  [ $rc -eq 0 ] || fail "$prog exited with status $rc:"$'\n'"$out"
  [ "$out" = "$want" ] || fail "$prog printed:"$'\n'"$out"$'\n'"expected: $want"
  echo "$out"
}
uses_libhakmem_so() {  # program -> prints the libhakmem.so it loads (empty if none)
  env "$@" ldd "$prog" 2>/dev/null | awk '/libhakmem/ {print $3}'
}

case "$mode" in
find_package)
  step "configure and build tests/install/consumer against $prefix"
  run "$CMAKE_COMMAND" -S "$CONSUMER_DIR" -B "$tmp/build" -G "$GENERATOR" \
    ${MAKE_PROGRAM:+-DCMAKE_MAKE_PROGRAM="$MAKE_PROGRAM"} \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DEXPECTED_PREFIX="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
  run "$CMAKE_COMMAND" --build "$tmp/build"

  step "run the consumers"
  expect_output "$tmp/build/core_user" "core_user: ok"
  expect_output "$tmp/build/static_user" "static_user: ok"
  expect_output "$tmp/build/shared_user" "shared_user: ok"
  # Static links must not depend on the shared library; the shared one must load the
  # installed copy (through the RPATH CMake gives imported targets).
  for p in core_user static_user; do
    prog=$tmp/build/$p
    [ -z "$(uses_libhakmem_so)" ] || fail "$p (static link) depends on $(uses_libhakmem_so)"
  done
  prog=$tmp/build/shared_user
  so=$(uses_libhakmem_so)
  case "$so" in
    "$libdir"/*) echo "shared_user loads $so" ;;
    *) fail "shared_user loads '$so', not the installed $libdir/libhakmem.so" ;;
  esac
  ;;

pkg_config)
  pkgconfig=$(command -v pkg-config) || { echo "SKIP: pkg-config is not installed"; exit 77; }
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  step "pkg-config hakmem with PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
  run "$pkgconfig" --exists --print-errors hakmem
  modversion=$("$pkgconfig" --modversion hakmem)
  [ "$modversion" = "$VERSION" ] || fail "pkg-config --modversion hakmem is '$modversion', the project is $VERSION"
  flags=$("$pkgconfig" --cflags --libs hakmem) || fail "pkg-config --cflags --libs hakmem failed"
  echo "pkg-config --cflags --libs hakmem: $flags"
  # The flags must point into the prefix the package was installed to.
  # (Paths compared after normalisation: a relocatable .pc may say ${pcfiledir}/../..)
  has_dir_flag() {  # flag-letter dir flags... -> 0 if some -<letter>PATH names dir
    local letter=$1 want w
    want=$(realpath -m "$2")
    shift 2
    for w in "$@"; do
      case "$w" in -"$letter"*) [ "$(realpath -m "${w#-"$letter"}")" = "$want" ] && return 0 ;; esac
    done
    return 1
  }
  read -r -a words <<<"$flags"
  bad=""
  has_dir_flag I "$prefix/include" "${words[@]}" || bad="$bad -I$prefix/include"
  has_dir_flag L "$libdir" "${words[@]}" || bad="$bad -L$libdir"
  pc_problem=""
  pc=("$pkgconfig")
  if [ -n "$bad" ]; then
    pc_problem="pkg-config flags do not point into the install prefix (missing:$bad)."$'\n'"  hakmem.pc installed by 'cmake --install --prefix $prefix' says:"$'\n'"$(sed 's/^/    /' "$libdir/pkgconfig/hakmem.pc")"$'\n'"  It has the configure-time CMAKE_INSTALL_PREFIX baked in, so an install to another prefix (cmake --install --prefix, DESTDIR packaging) gives a .pc pointing at the wrong place."
    echo "ERROR: $pc_problem" >&2
    echo "(continuing with pkg-config --define-prefix to check the rest; the test fails at the end)" >&2
    pc=("$pkgconfig" --define-prefix)
    flags=$("${pc[@]}" --cflags --libs hakmem) || fail "pkg-config --define-prefix --cflags --libs hakmem failed"
    echo "pkg-config --define-prefix --cflags --libs hakmem: $flags"
  fi
  read -r -a flag_words <<<"$flags"

  step "a C program built with those flags (links libhakmem.so)"
  run "$CC" -O2 -Wall -o "$tmp/pc_shared" "$CONSUMER_DIR/shared_user.c" "${flag_words[@]}"
  prog=$tmp/pc_shared
  so=$(uses_libhakmem_so LD_LIBRARY_PATH="$libdir")
  case "$so" in
    "$libdir"/*) echo "pc_shared loads $so" ;;
    *) fail "pc_shared loads '$so', not the installed $libdir/libhakmem.so" ;;
  esac
  expect_output "$tmp/pc_shared" "shared_user: ok" LD_LIBRARY_PATH="$libdir"

  step "the same program linked statically to libhakmem.a (pkg-config --static)"
  static_flags=$("${pc[@]}" --static --cflags --libs hakmem) || fail "pkg-config --static failed"
  read -r -a static_words <<<"${static_flags/-lhakmem/-Wl,-Bstatic -lhakmem -Wl,-Bdynamic}"
  # libhakmem.a is C++ (operator new/delete, std::bad_alloc): hakmem.pc's Libs.private
  # brings the C++ runtime, so a C program links with the flags alone.
  run "$CC" -O2 -Wall -o "$tmp/pc_static" "$CONSUMER_DIR/shared_user.c" "${static_words[@]}"
  prog=$tmp/pc_static
  [ -z "$(uses_libhakmem_so)" ] || fail "pc_static depends on $(uses_libhakmem_so)"
  expect_output "$tmp/pc_static" "shared_user: ok"
  [ -z "$pc_problem" ] || fail "$pc_problem"
  ;;

*)
  fail "unknown mode '$mode'"
  ;;
esac
echo "PASS [install.$mode]"
