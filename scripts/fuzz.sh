#!/usr/bin/env bash
# Fuzzes libxesvm.so through its C ABI with libFuzzer: `fuzz_calls` (call
# sequences on a simulated machine) and `fuzz_ioctl` (the simulated
# driver's raw ioctl entry). See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    SECONDS per target (default 60)
#
# The harnesses are built with ASan + UBSan, the library with coverage
# instrumentation, debug assertions and overflow checks (target/fuzz). Every
# file in fuzz/regressions/TARGET is run first; then the committed seeds in
# fuzz/corpus/TARGET grow a working corpus in target/fuzz/corpus/TARGET.
# Exits non-zero on the first crash, leak, hang or failed check, leaving the
# input in target/fuzz/artifacts/TARGET/ (turn it into a regression: copy it
# to fuzz/regressions/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/need.sh
need_libfuzzer

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_calls fuzz_ioctl)

host=$(rustc -vV | sed -n 's/^host: //p')
# Coverage for libFuzzer from the Rust side too (the flags cargo-fuzz uses);
# --target keeps them off build scripts.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=3 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
cargo build -q --release -p xesvm --lib --target "$host" --target-dir target/fuzz
lib="$(pwd)/target/fuzz/$host/release"

# Leaks are checked input by input (libFuzzer's -detect_leaks); the check at
# exit is off: LeakSanitizer (clang 14) was seen to deadlock there, in
# LockAllocator, after a clean run. A hang is a failure either way: every
# run has a wall-clock limit.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:leak_check_at_exit=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for t in "${targets[@]}"; do
  [ -f "fuzz/$t.c" ] || { echo "fuzz.sh: no target '$t' (fuzz/$t.c)" >&2; exit 2; }
  bin="target/fuzz/$t"
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wextra -Werror -Iinclude "fuzz/$t.c" -L"$lib" -lxesvm-sim -Wl,-rpath,"$lib" -o "$bin"
  mkdir -p "target/fuzz/corpus/$t" "target/fuzz/artifacts/$t"
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    echo "== $t: regressions"
    timeout -k 10 300 "$bin" -runs=1 fuzz/regressions/"$t"/* 2>&1 | tail -n 3
  fi
  echo "== $t: ${seconds}s"
  timeout -k 10 $((seconds + 300)) "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="target/fuzz/artifacts/$t/" "target/fuzz/corpus/$t" "fuzz/corpus/$t" 2> "target/fuzz/$t.log" \
    || { tail -n 60 "target/fuzz/$t.log" >&2; echo "fuzz.sh: $t failed; the input is in target/fuzz/artifacts/$t/" >&2; exit 1; }
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+.*DONE" "target/fuzz/$t.log" || true
  echo "$t: 0 crashes in ${seconds}s"
done
