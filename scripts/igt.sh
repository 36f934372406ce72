#!/usr/bin/env bash
# Runs IGT's xe_query (igt-gpu-tools-tests, Debian unstable) against the
# simulated driver under umockdev: capi-tests/umockdev/igt_shim.c builds a
# testbed whose Xe nodes the simulator answers. Nothing is installed: the
# packages are fetched with `apt-get download` from the archive this
# machine's apt sources name (through scripts/kernel-header.sh's apt
# setup) and unpacked into target/igt; the tests run with unstable's
# glibc loader, which they need (bookworm's glibc is older), and this
# machine's glib and umockdev.
#
# Each single-GPU subtest runs on its own (IGT stops at the first failed
# fixture otherwise). Not run, and why:
#  - query-cs-cycles: it creates an exec queue and runs a spinning batch
#    on each engine; the simulated driver has no BOs and no command
#    submission (EXEC_QUEUE_CREATE is EOPNOTSUPP);
#  - multigpu-*: IGT's multi-GPU harness resizes a System V message queue
#    (msgctl IPC_SET), which needs CAP_SYS_RESOURCE.
# Exit 77 when the packages cannot be had or do not load (a skip); 1 when a
# subtest fails.
set -euo pipefail
cd "$(dirname "$0")/.."
skip() { echo "igt: skipped: $*" >&2; exit 77; }

command -v umockdev-wrapper >/dev/null 2>&1 || skip "no umockdev"
scripts/kernel-header.sh >/dev/null || skip "no Debian unstable archive (scripts/kernel-header.sh)"
apt_dir="$(pwd)/target/kernel-header"
[ -d "$apt_dir/lists" ] || skip "no apt lists in $apt_dir"
dir="$(pwd)/target/igt"
root="$dir/root"
lib="$root/usr/lib/x86_64-linux-gnu"
test="$root/usr/libexec/igt-gpu-tools/xe_query"
if [ ! -f "$dir/ok" ]; then
  rm -rf "$dir"
  mkdir -p "$dir/debs"
  [ -f "$apt_dir/apt.conf" ] || skip "no $apt_dir/apt.conf (scripts/kernel-header.sh writes it)"
  export APT_CONFIG="$apt_dir/apt.conf"
  apt=(-q)
  # The tests, unstable's glibc, and the libraries libigt needs that
  # bookworm lacks or has too old.
  pkgs=(igt-gpu-tools igt-gpu-tools-tests libc6 libpci3 libdw1t64 libelf1t64 libunwind8 liboping0 libjansson4
        libkmod2 libpciaccess0 libxv1 libcairo2 libpixman-1-0 libdrm2 libdrm-amdgpu1 libdrm-nouveau2 libudev1
        liblzma5 libzstd1 libbz2-1.0 zlib1g libssl3t64)
  (cd "$dir/debs" && apt-get "${apt[@]}" download "${pkgs[@]}" >&2) || skip "apt-get download of igt-gpu-tools-tests and its libraries failed"
  for d in "$dir"/debs/*.deb; do dpkg -x "$d" "$root"; done
  # This machine's glib: unstable's wants a newer libmount.
  rm -f "$lib"/libg{lib,io,object,module,thread}-2.0.so*
  [ -x "$test" ] || skip "igt-gpu-tools-tests has no xe_query"
  touch "$dir/ok"
fi

cargo build -q --workspace # as scripts/test.sh builds it: no second build of the library
cc -std=gnu11 -Wall -Wextra -Werror -shared -fPIC -Iinclude $(pkg-config --cflags umockdev-1.0) \
  capi-tests/umockdev/igt_shim.c -o "$dir/igt_shim.so" $(pkg-config --libs umockdev-1.0) \
  -L"$(pwd)/target/debug" -lxesvm-sim -Wl,-rpath,"$(pwd)/target/debug"
preload=$(ls /usr/lib/*/libumockdev-preload.so.0 | head -n 1)
run() {
  env LD_LIBRARY_PATH="$lib:/usr/lib/x86_64-linux-gnu" LD_PRELOAD="$preload $dir/igt_shim.so" \
    "$lib/ld-linux-x86-64.so.2" "$test" "$@"
}
subtests=$(run --list-subtests 2>/dev/null) || skip "xe_query does not load with unstable's glibc here"

pass=0 fail=0 notrun=0
for t in $subtests; do
  case "$t" in
    query-cs-cycles|multigpu-*) notrun=$((notrun + 1)); continue ;;
  esac
  if run --run-subtest "$t" > "$dir/$t.log" 2>&1 && grep -q "^Subtest $t: SUCCESS" "$dir/$t.log"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "igt: xe_query --run-subtest $t failed:" >&2
    grep -v "no version information" "$dir/$t.log" | grep -E "CRITICAL|Subtest|error" | head -n 8 >&2
  fi
done
echo "igt xe_query on the simulated driver: $pass passed, $fail failed, $notrun not run (see scripts/igt.sh)"
[ "$fail" = 0 ]
