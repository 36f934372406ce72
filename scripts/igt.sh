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
# Each subtest runs on its own (IGT stops at the first failed fixture
# otherwise): the single-GPU ones on one simulated GPU (SHIM_PRESET dgpu),
# the multigpu-* ones on a machine of two (2dgpu-p2p: two render nodes,
# one simulated machine), where IGT forks a child per GPU.
#
# The multigpu-* subtests start IGT's allocator service first
# (intel_allocator_multiprocess_start, tests/intel/xe_query.c:1128), which
# resizes a System V message queue to 294,912 bytes (msgctl IPC_SET,
# lib/intel_allocator_msgchannel.c:70): past kernel.msgmnb (16 KiB by
# default) that needs CAP_SYS_RESOURCE, which containers often drop. They
# then run in a private IPC namespace whose msgmnb is raised (unshare --ipc,
# or --user --map-root-user --ipc without privileges); where neither can be
# had, they are not run and the script says so.
#
# Not run, and why (IGT 2.5; line numbers of upstream's v2.4 tag, where
# these files are as in later master; 2.5's binary names the same lines in
# its assertion messages: xe_query.c:1133, xe_ioctl.c:487, :70 below):
#  - query-cs-cycles and multigpu-query-cs-cycles: the ENGINE_CYCLES query
#    itself is answered (query-invalid-cs-cycles passes), but __engine_cycles
#    first creates an exec queue (tests/intel/xe_query.c:679) and starts a
#    spinning batch on the engine (:681, igt_spin_new -> xe_spin_create in
#    lib/xe/xe_spin.c: a syncobj, a BO mapped into the test, a bind,
#    DRM_IOCTL_XE_EXEC at :343, then waiting at :344 until the GPU runs the
#    batch). The simulated driver has no BOs and no command submission:
#    EXEC_QUEUE_CREATE is EOPNOTSUPP. Both are run, and counted as not run
#    only when they stop exactly there (lib/xe/xe_ioctl.c:487, error -95);
#    any other outcome is a pass or a failure.
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
# ipc: a wrapper into a private IPC namespace (multigpu-*), or nothing.
run() {
  "${ipc[@]}" env LD_LIBRARY_PATH="$lib:/usr/lib/x86_64-linux-gnu" LD_PRELOAD="$preload $dir/igt_shim.so" \
    "$lib/ld-linux-x86-64.so.2" "$test" "$@"
}
ipc=()
subtests=$(run --list-subtests 2>/dev/null) || skip "xe_query does not load with unstable's glibc here"

# The allocator's message queue (see above): 4096 requests of 72 bytes.
queue_bytes=294912
multigpu=""
cap_eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
if [ "$(cat /proc/sys/kernel/msgmnb)" -ge "$queue_bytes" ] || (( (0x${cap_eff:-0} >> 24) & 1 )); then
  multigpu=direct
else
  raise="echo $queue_bytes > /proc/sys/kernel/msgmnb"
  for ns in "--ipc" "--user --map-root-user --ipc"; do
    # shellcheck disable=SC2086 # the options are words
    if unshare $ns sh -c "$raise" 2>/dev/null; then
      multigpu="unshare $ns"
      # shellcheck disable=SC2086
      multigpu_ipc=(unshare $ns sh -c "$raise && exec \"\$@\"" sh)
      break
    fi
  done
fi
[ -z "$multigpu" ] || echo "igt: multigpu-* on two simulated GPUs (SHIM_PRESET=2dgpu-p2p)$([ "$multigpu" = direct ] ||
  echo ", in $multigpu with kernel.msgmnb at $queue_bytes")"
no_multigpu="IGT's allocator resizes a System V message queue to $queue_bytes bytes (msgctl IPC_SET,\
 lib/intel_allocator_msgchannel.c:70), past kernel.msgmnb ($(cat /proc/sys/kernel/msgmnb)), and there is\
 neither CAP_SYS_RESOURCE nor an IPC namespace to raise it in"
no_exec="it creates an exec queue and runs a spinning batch on each engine (tests/intel/xe_query.c:679-681),\
 and the simulated driver has no command submission: EXEC_QUEUE_CREATE is EOPNOTSUPP (lib/xe/xe_ioctl.c:487)"

pass=0 fail=0 notrun=0 why=""
for t in $subtests; do
  preset=dgpu ipc=()
  case "$t" in
    multigpu-*)
      if [ -z "$multigpu" ]; then
        notrun=$((notrun + 1))
        continue
      fi
      preset=2dgpu-p2p
      [ "$multigpu" = direct ] || ipc=("${multigpu_ipc[@]}") ;;
  esac
  SHIM_PRESET=$preset run --run-subtest "$t" > "$dir/$t.log" 2>&1 || true
  if grep -q "^Subtest $t: SUCCESS" "$dir/$t.log"; then
    pass=$((pass + 1))
  elif [[ "$t" == *query-cs-cycles ]] && grep -q "function xe_exec_queue_create, file .*xe_ioctl.c" "$dir/$t.log" &&
       grep -q "error: -95 != 0" "$dir/$t.log"; then
    # No command submission in the simulated driver (see above).
    notrun=$((notrun + 1)) why+="  $t: $no_exec"$'\n'
  else
    fail=$((fail + 1))
    echo "igt: xe_query --run-subtest $t ($preset) failed:" >&2
    grep -v "no version information" "$dir/$t.log" | grep -E "CRITICAL|Subtest|error" | head -n 8 >&2
  fi
done
echo "igt xe_query on the simulated driver: $pass passed, $fail failed, $notrun not run (see scripts/igt.sh)"
[ -n "$multigpu" ] || why+="  multigpu-*: $no_multigpu"$'\n'
[ -z "$why" ] || printf 'igt: not run:\n%s' "$why"
[ "$fail" = 0 ]
