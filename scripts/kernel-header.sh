#!/usr/bin/env bash
# Fetches the Linux uAPI headers of a 7.x linux-libc-dev, without installing
# anything: `apt-get download` from the Debian archive this machine's own apt
# sources name (its URI, with the unstable suite, where 7.x lives), then
# `dpkg -x` into target/kernel-header. Prints the include directory on
# stdout. When the package cannot be had (no apt, no network, no 7.x), it
# says why on stderr and exits 77: a skip, except under CI=true, where
# scripts/test.sh treats it as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(pwd)/target/kernel-header"
skip() { echo "kernel header: skipped: $*" >&2; exit 77; }

if [ -f "$dir/ok" ]; then
  echo "$dir/root/usr/include"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || skip "no apt-get or dpkg (not Debian)"
# The archive URI of the machine's first Debian source (deb822 or one-line).
uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' | grep -v security | head -n 1 || true)
if [ -z "$uri" ]; then
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' | grep -v security | head -n 1 || true)
fi
[ -n "$uri" ] || skip "no Debian archive in this machine's apt sources"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || skip "no $keyring"

rm -rf "$dir"
mkdir -p "$dir/etc" "$dir/lists/partial" "$dir/cache/archives/partial"
printf 'Types: deb\nURIs: %s\nSuites: unstable\nComponents: main\nSigned-By: %s\n' "$uri" "$keyring" > "$dir/etc/unstable.sources"
# The archive's apt setup, as a config file other scripts reuse
# (APT_CONFIG=target/kernel-header/apt.conf: scripts/igt.sh).
cat > "$dir/apt.conf" <<CONF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$dir/etc";
Dir::State::Lists "$dir/lists";
Dir::Cache "$dir/cache";
APT::Sandbox::User "root";
CONF
export APT_CONFIG="$dir/apt.conf"
apt=(-q)
apt-get "${apt[@]}" update >&2 || skip "apt-get update of $uri unstable failed (no network?)"
version=$(apt-cache "${apt[@]}" policy linux-libc-dev | sed -n 's/^[[:space:]]*Candidate:[[:space:]]*//p')
case "$version" in
  7.*) ;;
  *) skip "linux-libc-dev in $uri unstable is '$version', not 7.x" ;;
esac
(cd "$dir" && apt-get "${apt[@]}" download "linux-libc-dev=$version" >&2) || skip "apt-get download linux-libc-dev=$version failed"
dpkg -x "$dir"/linux-libc-dev_*.deb "$dir/root"
[ -f "$dir/root/usr/include/drm/xe_drm.h" ] || skip "linux-libc-dev $version has no drm/xe_drm.h"
echo "linux-libc-dev $version from $uri unstable" > "$dir/ok"
echo "kernel header: linux-libc-dev $version" >&2
echo "$dir/root/usr/include"
