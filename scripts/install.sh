#!/usr/bin/env bash
# Installs libxesvm into PREFIX: the shared library with its soname link
# (libxesvm.so.<ABI major>), the static archive, the headers and xesvm.pc.
#
#   scripts/install.sh PREFIX            release build (the default)
#   scripts/install.sh --debug PREFIX    the debug build (what the tests use)
#   scripts/install.sh --no-build ...    what target/<profile> holds, unbuilt
#                                        (scripts/test.sh, which built it)
#   DESTDIR=/stage scripts/install.sh /usr/local   staged install for packagers
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=yes
while [ $# -gt 1 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --no-build) build=no ;;
    *) break ;;
  esac
  shift
done
prefix=${1:?usage: scripts/install.sh [--debug] [--no-build] PREFIX}
case "$prefix" in -*) echo "usage: scripts/install.sh [--debug] [--no-build] PREFIX" >&2; exit 2 ;; esac
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac

if [ "$build" = yes ]; then
  if [ "$profile" = release ]; then cargo build -q --release -p xesvm --lib; else cargo build -q -p xesvm --lib; fi
fi
[ -f "target/$profile/libxesvm.so" ] || { echo "install: no target/$profile/libxesvm.so (build it, or drop --no-build)" >&2; exit 1; }

# The first `version = ` line (sed quits there: no pipe that can break).
version=$(sed -n '/^version = "\(.*\)"$/{s//\1/p;q}' Cargo.toml)
major=$(sed -n 's/^const ABI_MAJOR: &str = "\(.*\)";$/\1/p' build.rs)
[ -n "$version" ] || { echo "install: no 'version = \"...\"' line in Cargo.toml" >&2; exit 1; }
[ -n "$major" ] || { echo "install: no ABI_MAJOR constant in build.rs" >&2; exit 1; }
root="${DESTDIR:-}$prefix"
lib="$root/lib"
inc="$root/include"

install -d "$lib/pkgconfig" "$inc/xesvm"
install -m 755 "target/$profile/libxesvm.so" "$lib/libxesvm.so.$version"
ln -sfn "libxesvm.so.$version" "$lib/libxesvm.so.$major"
ln -sfn "libxesvm.so.$major" "$lib/libxesvm.so"
install -m 644 "target/$profile/libxesvm.a" "$lib/libxesvm.a"
install -m 644 include/xesvm.h "$inc/xesvm.h"
install -m 644 include/xesvm/xe_drm.h "$inc/xesvm/xe_drm.h"
sed -e "s|@PREFIX@|$prefix|" -e 's|@LIBDIR@|${prefix}/lib|' -e 's|@INCLUDEDIR@|${prefix}/include|' \
    -e "s|@VERSION@|$version|" pkgconfig/xesvm.pc.in > "$lib/pkgconfig/xesvm.pc"
echo "installed xesvm $version ($profile) into $root (pkg-config: $lib/pkgconfig)"
