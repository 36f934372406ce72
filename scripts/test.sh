#!/usr/bin/env bash
# Runs every test of xesvm: the Rust tests (unit, integration, property),
# then the C tests (CMake + ctest, against the build tree's xesvm-sim.pc),
# then the lean build (no simulator) and the pkg-config smoke test of both
# artefacts (build tree, and an install prefix).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/need.sh
need cc gcc
need pkg-config pkg-config
need cmake cmake
# nm checks the lean library's exports (binutils; gcc pulls it in, but say so).
need nm binutils
# The kernel driver path end to end (capi-tests/umockdev).
need umockdev-wrapper umockdev
need_pc umockdev-1.0 libumockdev-dev

echo "== cargo test"
cargo test --workspace

echo "== C tests (ctest)"
# The workspace, as cargo test resolved it: `-p xesvm` alone would unify
# other features of its dependencies (toml_edit) and build the library again.
cargo build -q --workspace
export PKG_CONFIG_PATH="$(pwd)/target/debug/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cmake -S capi-tests -B target/capi-tests -DCMAKE_BUILD_TYPE=Debug -DXESVM_REQUIRE_UMOCKDEV=ON >/dev/null
cmake --build target/capi-tests -j 2
ctest --test-dir target/capi-tests --output-on-failure -j 2

echo "== C tests under ASan + UBSan"
# umockdev's LD_PRELOAD comes before ASan's runtime in the kernel-path test.
cmake -S capi-tests -B target/capi-tests-asan -DCMAKE_BUILD_TYPE=Debug -DXESVM_SANITIZE=ON -DXESVM_REQUIRE_UMOCKDEV=ON >/dev/null
cmake --build target/capi-tests-asan -j 2
ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir target/capi-tests-asan --output-on-failure -j 2

echo "== C tests under valgrind memcheck (ctest -T memcheck)"
need valgrind valgrind
ctest --test-dir target/capi-tests -T memcheck -LE umockdev --output-on-failure -j 2

echo "== soak: a short run (debug build: overflow checks and debug assertions on)"
cargo build -q -p xesvm-tools --bin xesvm-soak
target/debug/xesvm-soak --threads 4 --ops 100000 --phases 5 --inject 0.05

echo "== fuzz smoke: regressions, then 20 s per target"
scripts/fuzz.sh 20

echo "== the real uAPI header: linux-libc-dev 7.x (scripts/kernel-header.sh)"
set +e
kinc=$(scripts/kernel-header.sh)
krc=$?
set -e
if [ "$krc" = 0 ]; then
  # The C layout checks, the Rust layout checks, and both include orders.
  cc -std=c11 -Wall -Wextra -Werror -DXESVM_KERNEL_HEADER -I"$kinc" -Iinclude capi-tests/test_uapi_layout.c $(pkg-config --libs xesvm-sim) -o target/kernel-header/test_uapi_layout
  LD_LIBRARY_PATH=target/debug target/kernel-header/test_uapi_layout
  XESVM_KERNEL_HEADERS="$kinc" cargo test -q --workspace --test uapi_kernel_header
  for first in XESVM_KERNEL_FIRST XESVM_FIRST; do
    cc -std=c11 -Wall -Wextra -Werror -D"$first" -Iinclude -I"$kinc" capi-tests/kernel_header_both_orders.c \
      $(pkg-config --libs xesvm-sim) -o target/kernel-header/both_orders
    LD_LIBRARY_PATH=target/debug target/kernel-header/both_orders
  done
elif [ "$krc" = 77 ] && [ -z "${CI:-}" ]; then
  echo "kernel header: not available here (see above); CI requires it"
else
  echo "kernel header: required in CI, and not fetched (exit $krc)" >&2
  exit 1
fi

echo "== IGT's xe_query on the simulated driver, under umockdev (scripts/igt.sh)"
set +e
scripts/igt.sh
irc=$?
set -e
if [ "$irc" = 77 ]; then
  echo "igt: not available here (see above)"
elif [ "$irc" != 0 ]; then
  exit 1
fi

echo "== lean build: no simulator (cargo build --no-default-features)"
cargo build -q -p xesvm --lib --no-default-features --target-dir target/lean
nm -D --defined-only target/lean/debug/libxesvm.so > target/lean/exports.txt
if grep -E ' (svm_sim_|svm_context_get_sim)' target/lean/exports.txt; then
  echo "lean build: exports simulator symbols (above)" >&2; exit 1
fi
grep -q ' svm_alloc_vram$' target/lean/exports.txt || { echo "lean build: svm_alloc_vram missing" >&2; exit 1; }
# A program built with the simulator's part of the header left out links
# and runs against it; asking for the simulated driver says why not.
cat > target/lean/lean.c <<'C'
#include <errno.h>
#include <stdio.h>
#include <xesvm.h>
#ifdef XESVM_SIM
#error "XESVM_NO_SIM still declares the simulator"
#endif
int main(void)
{
	svm_context_config cfg = { .struct_size = sizeof cfg, .driver = SVM_DRIVER_SIM };
	svm_context *ctx = NULL;
	int rc = svm_context_create(&cfg, &ctx);
	if (rc != -EOPNOTSUPP) {
		fprintf(stderr, "SVM_DRIVER_SIM on a lean build: %d, wanted -EOPNOTSUPP\n", rc);
		return 1;
	}
	printf("lean build: %s\n", svm_last_error());
	return 0;
}
C
# Built through the lean build tree's xesvm.pc: its Cflags leave the
# simulator's part of the header out (XESVM_NO_SIM).
lean_pc="$(pwd)/target/lean/debug/pkgconfig"
cc -std=c11 -Wall -Werror target/lean/lean.c $(PKG_CONFIG_PATH="$lean_pc" pkg-config --cflags --libs xesvm) -o target/lean/lean
target/lean/lean
echo "lean build: $(grep -c ' svm_' target/lean/exports.txt) svm_ functions, no simulator"

echo "== pkg-config: both artefacts, build tree and install prefix"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A client of either artefact; -DWANT_SIM says which it asked for, and the
# .pc's Cflags must agree (xesvm.pc hides the simulator, xesvm-sim.pc not).
cat > "$tmp/client.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <xesvm.h>
#if defined(WANT_SIM) != defined(XESVM_SIM)
#error "the .pc's Cflags and the artefact disagree about the simulator"
#endif
int main(void)
{
	svm_context_config cfg = { .struct_size = sizeof cfg, .driver = SVM_DRIVER_SIM, .sim_preset = "2dgpu-p2p" };
	svm_context *ctx = NULL;
	int rc = svm_context_create(&cfg, &ctx);
#ifdef WANT_SIM
	svm_sim *sim = NULL;
	if (rc != 0 || svm_context_get_sim(ctx, &sim) != 0 || !sim) { fprintf(stderr, "xesvm-sim: no simulated driver: %d: %s\n", rc, svm_last_error()); return 1; }
	svm_context_destroy(ctx);
#else
	if (rc != -EOPNOTSUPP) { fprintf(stderr, "xesvm: SVM_DRIVER_SIM gave %d, wanted -EOPNOTSUPP\n", rc); return 1; }
#endif
	printf("%s %s\n", svm_version(), rc == 0 ? "with the simulator" : "without the simulator");
	return 0;
}
C
# The build trees: xesvm.pc in target/lean/debug, xesvm-sim.pc in target/debug.
cc examples/version.c $(PKG_CONFIG_PATH="$lean_pc" pkg-config --cflags --libs xesvm) -o "$tmp/version-tree"
"$tmp/version-tree"
cc -DWANT_SIM "$tmp/client.c" $(pkg-config --cflags --libs xesvm-sim) -o "$tmp/client-sim-tree"
"$tmp/client-sim-tree"
# The libraries built above (cargo build --workspace, and the lean build):
# -p xesvm would build the first again with other features of its
# dependencies. --sim: the simulator artefact too.
scripts/install.sh --debug --no-build --sim "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
for want in lean sim; do
  if [ "$want" = sim ]; then pc=xesvm-sim; so=libxesvm-sim.so.1; def=-DWANT_SIM; else pc=xesvm; so=libxesvm.so.1; def=; fi
  cc $def "$tmp/client.c" $(pkg-config --cflags --libs $pc) -o "$tmp/client-$want"
  "$tmp/client-$want"
  # No pipe into grep -q: under pipefail, ldd can die of SIGPIPE when grep
  # exits at the first match, and the check would fail at random.
  ldd "$tmp/client-$want" > "$tmp/ldd.txt"
  grep -q "$tmp/prefix/lib/$so" "$tmp/ldd.txt" || { echo "install: the $pc program does not load $tmp/prefix/lib/$so:" >&2; cat "$tmp/ldd.txt" >&2; exit 1; }
  link=$(readlink "$tmp/prefix/lib/${so%.*}")
  [ "$link" = "$so" ] || { echo "install: ${so%.*} -> '$link', wanted $so" >&2; exit 1; }
done
cc examples/version.c $(pkg-config --cflags --libs xesvm) -o "$tmp/version-installed"
"$tmp/version-installed"
# --sim installs the tools (built above by cargo build --workspace) too.
"$tmp/prefix/bin/xesvm" --version
# The installed runtime library: no simulator symbol, and every export in
# the version node XESVM_1 (xesvm.map).
nm -D --defined-only --with-symbol-versions "$tmp/prefix/lib/libxesvm.so.1" > "$tmp/exports.txt"
if grep -E ' (svm_sim_|svm_context_get_sim)' "$tmp/exports.txt"; then
  echo "install: libxesvm.so.1 exports simulator symbols (above)" >&2; exit 1
fi
if grep ' svm_' "$tmp/exports.txt" | grep -v -E '@@XESVM_1(\.1)?$'; then
  echo "install: libxesvm.so.1 exports the functions above without the version XESVM_1 or XESVM_1.1" >&2; exit 1
fi
grep -q ' svm_alloc_vram@@XESVM_1$' "$tmp/exports.txt" || { echo "install: libxesvm.so.1 lacks svm_alloc_vram@@XESVM_1" >&2; exit 1; }
# 0.3.0's additions are in their own node (xesvm.map).
for f in svm_launch_report svm_launch_submit; do
  grep -q " $f@@XESVM_1.1\$" "$tmp/exports.txt" || { echo "install: libxesvm.so.1 lacks $f@@XESVM_1.1" >&2; exit 1; }
done
unset PKG_CONFIG_PATH
echo "pkg-config smoke test: 7 passed, 0 failed ($(grep -c ' svm_' "$tmp/exports.txt") exports at XESVM_1 and XESVM_1.1, no simulator)"
