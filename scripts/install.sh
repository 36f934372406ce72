#!/usr/bin/env bash
# Installs libxesvm into PREFIX: the library a runtime links, without the
# simulator (cargo's --no-default-features, built in target/lean): the shared
# library with its soname link (libxesvm.so.<ABI major>), the static archive,
# the headers and xesvm.pc (its Cflags define XESVM_NO_SIM). With --sim, also
# the separate artefact for tests and benchmarks: libxesvm-sim.so (the
# default build, simulator included; soname libxesvm-sim.so.<ABI major>),
# xesvm-sim.pc, and the tools (bin/xesvm, the benchmarks) where built.
#
#   scripts/install.sh PREFIX            release build (the default)
#   scripts/install.sh --sim PREFIX      and the simulator artefact and tools
#   scripts/install.sh --debug PREFIX    the debug build (what the tests use)
#   scripts/install.sh --no-build ...    what target/lean/<profile> (and, with
#                                        --sim, target/<profile>) hold,
#                                        unbuilt (scripts/test.sh, which
#                                        built them)
#   DESTDIR=/stage scripts/install.sh /usr/local   staged install for packagers
#
# Each shared library is linked again from its build's static archive with
# the version script xesvm.map (every export in the node XESVM_1; cargo's own
# link cannot version them, see build.rs), then checked with nm: the lean one
# must export no simulator symbol, and every export must carry a version.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/install.sh [--debug] [--no-build] [--sim] PREFIX"
profile=release
build=yes
sim=no
while [ $# -gt 1 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --no-build) build=no ;;
    --sim) sim=yes ;;
    *) break ;;
  esac
  shift
done
prefix=${1:?$usage}
case "$prefix" in -*) echo "$usage" >&2; exit 2 ;; esac
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac

release=()
[ "$profile" = release ] && release=(--release)
lean_dir="target/lean/$profile"
sim_dir="target/$profile"
if [ "$build" = yes ]; then
  # The same command as scripts/test.sh's lean stage (no rebuild after it).
  cargo build -q "${release[@]}" -p xesvm --lib --no-default-features --target-dir target/lean
  # The workspace: the library with the simulator and the tools, in one build.
  if [ "$sim" = yes ]; then cargo build -q "${release[@]}" --workspace; fi
fi
[ -f "$lean_dir/libxesvm.a" ] || { echo "install: no $lean_dir/libxesvm.a (build it, or drop --no-build)" >&2; exit 1; }
if [ "$sim" = yes ]; then
  [ -f "$sim_dir/libxesvm.a" ] || { echo "install: no $sim_dir/libxesvm.a (build it, or drop --no-build)" >&2; exit 1; }
fi

# The first `version = ` line (sed quits there: no pipe that can break).
version=$(sed -n '/^version = "\(.*\)"$/{s//\1/p;q}' Cargo.toml)
major=$(sed -n 's/^const ABI_MAJOR: &str = "\(.*\)";$/\1/p' build.rs)
[ -n "$version" ] || { echo "install: no 'version = \"...\"' line in Cargo.toml" >&2; exit 1; }
[ -n "$major" ] || { echo "install: no ABI_MAJOR constant in build.rs" >&2; exit 1; }
root="${DESTDIR:-}$prefix"
lib="$root/lib"
inc="$root/include"

# link_so NAME ARCHIVE: lib/libNAME.so.<version> from ARCHIVE, all of it,
# with xesvm.map and the soname libNAME.so.<major> (the libraries the .pc
# files' Libs.private name are what cargo links a cdylib with), and the
# links libNAME.so.<major> and libNAME.so.
link_so() {
  local name=$1 archive=$2 so="$lib/lib$1.so.$version"
  ${CC:-cc} -shared -o "$so" -Wl,--whole-archive "$archive" -Wl,--no-whole-archive \
    -Wl,--version-script=xesvm.map -Wl,-soname,"lib$name.so.$major" \
    -Wl,--gc-sections -Wl,-z,relro,-z,now -Wl,-z,noexecstack \
    -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
  ln -sfn "lib$name.so.$version" "$lib/lib$name.so.$major"
  ln -sfn "lib$name.so.$major" "$lib/lib$name.so"
  if command -v nm >/dev/null 2>&1; then
    local exports
    exports=$(nm -D --defined-only --with-symbol-versions "$so" | awk '$3 ~ /^svm_/ { print $3 }')
    [ -n "$exports" ] || { echo "install: $so exports no svm_ function" >&2; exit 1; }
    if grep -v -E '@@XESVM_1(\.1)?$' <<<"$exports"; then
      echo "install: $so: the exports above carry no version XESVM_1 or XESVM_1.1" >&2; rm -f "$so"; exit 1
    fi
    if [ "$name" = xesvm ] && grep -E '^(svm_sim_|svm_context_get_sim)' <<<"$exports"; then
      echo "install: $so exports the simulator (above): $archive is not a lean build" >&2; rm -f "$so"; exit 1
    fi
  fi
}

# pc NAME: lib/pkgconfig/NAME.pc from pkgconfig/NAME.pc.in.
pc() {
  sed -e "s|@PREFIX@|$prefix|" -e 's|@LIBDIR@|${prefix}/lib|' -e 's|@INCLUDEDIR@|${prefix}/include|' \
      -e "s|@VERSION@|$version|" "pkgconfig/$1.pc.in" > "$lib/pkgconfig/$1.pc"
}

install -d "$lib/pkgconfig" "$inc/xesvm"
link_so xesvm "$lean_dir/libxesvm.a"
install -m 644 "$lean_dir/libxesvm.a" "$lib/libxesvm.a"
install -m 644 include/xesvm.h "$inc/xesvm.h"
install -m 644 include/xesvm/xe_drm.h "$inc/xesvm/xe_drm.h"
pc xesvm
what="xesvm $version ($profile)"

if [ "$sim" = yes ]; then
  link_so xesvm-sim "$sim_dir/libxesvm.a"
  pc xesvm-sim
  # The tools' binaries, as tools/Cargo.toml names them, where built.
  tools=()
  for t in $(sed -n '/^\[\[bin\]\]/,/^name/s/^name = "\(.*\)"$/\1/p' tools/Cargo.toml); do
    [ -f "$sim_dir/$t" ] && tools+=("$t")
  done
  if [ ${#tools[@]} -gt 0 ]; then
    install -d "$root/bin"
    for t in "${tools[@]}"; do install -m 755 "$sim_dir/$t" "$root/bin/$t"; done
  fi
  what="$what and xesvm-sim with ${#tools[@]} tools"
fi
echo "installed $what into $root (pkg-config: $lib/pkgconfig)"
