# Sourced by the scripts: `need COMMAND DEBIAN_PACKAGE` makes sure a tool is
# on PATH, installing the package with apt-get when running as root, and
# otherwise stopping at once with the package's name.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "xesvm: '$1' is missing; installing the Debian package '$2'" >&2
    if [ -z "${XESVM_APT_UPDATED:-}" ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && XESVM_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >&2
    command -v "$1" >/dev/null 2>&1 && return 0
  fi
  echo "xesvm: '$1' is required: install the Debian package '$2' (sudo apt-get install $2)" >&2
  exit 1
}

# `need_pc MODULE DEBIAN_PACKAGE`: the same for a pkg-config module (a -dev package).
need_pc() {
  pkg-config --exists "$1" 2>/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "xesvm: pkg-config module '$1' is missing; installing the Debian package '$2'" >&2
    if [ -z "${XESVM_APT_UPDATED:-}" ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && XESVM_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >&2
    pkg-config --exists "$1" 2>/dev/null && return 0
  fi
  echo "xesvm: pkg-config module '$1' is required: install the Debian package '$2' (sudo apt-get install $2)" >&2
  exit 1
}
