# Sourced by the scripts: `need COMMAND DEBIAN_PACKAGE` makes sure a tool is
# on PATH, installing the package with apt-get when running as root, and
# otherwise stopping at once with the package's name.

# `apt_install PACKAGE`: installs it when root with apt-get; 1 otherwise.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  if [ -z "${XESVM_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && export XESVM_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >&2
}

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "xesvm: '$1' is missing; installing the Debian package '$2'" >&2
  apt_install "$2" && command -v "$1" >/dev/null 2>&1 && return 0
  echo "xesvm: '$1' is required: install the Debian package '$2' (sudo apt-get install $2)" >&2
  exit 1
}

# `need_pc MODULE DEBIAN_PACKAGE`: the same for a pkg-config module (a -dev package).
need_pc() {
  pkg-config --exists "$1" 2>/dev/null && return 0
  echo "xesvm: pkg-config module '$1' is missing; installing the Debian package '$2'" >&2
  apt_install "$2" && pkg-config --exists "$1" 2>/dev/null && return 0
  echo "xesvm: pkg-config module '$1' is required: install the Debian package '$2' (sudo apt-get install $2)" >&2
  exit 1
}

# `need_libfuzzer`: clang with libFuzzer and the sanitizer runtimes (Debian
# ships them apart from clang, as libclang-rt-<version>-dev).
need_libfuzzer() {
  need clang clang
  local probe='int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }'
  echo "$probe" | clang -x c - -fsanitize=fuzzer,address,undefined -o /dev/null 2>/dev/null && return 0
  local v pkg
  v=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
  pkg="libclang-rt-$v-dev"
  echo "xesvm: clang cannot link libFuzzer; installing the Debian package '$pkg'" >&2
  apt_install "$pkg" && echo "$probe" | clang -x c - -fsanitize=fuzzer,address,undefined -o /dev/null && return 0
  echo "xesvm: libFuzzer is required: install the Debian package '$pkg' (sudo apt-get install $pkg)" >&2
  exit 1
}
