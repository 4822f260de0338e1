#!/usr/bin/env bash
# Prints the path of a static busybox for another architecture (arm64 by
# default), taken from Debian's busybox-static package of that architecture
# with apt's multiarch support: the package is downloaded (never installed)
# and unpacked once into a cache dir. Used by the multi-platform tests and
# benchmarks, which run it under QEMU user-mode emulation.
#   scripts/foreign-busybox.sh [ARCH]   (Debian arch name: arm64, armhf, riscv64, ...)
set -euo pipefail
arch=${1:-arm64}
cache=${BUILDER_TEST_CACHE:-/var/tmp/builder-test}
out=$cache/busybox-static-$arch
if [ -x "$out" ]; then echo "$out"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "foreign-busybox: need root to add the $arch architecture to apt" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
work=$(mktemp -d)
added=
cleanup() {
  rm -rf "$work"
  # Leave apt as it was: the architecture only served this download.
  if [ -n "$added" ]; then dpkg --remove-architecture "$arch" 2>/dev/null || true; fi
}
trap cleanup EXIT
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
  dpkg --add-architecture "$arch"
  added=1
fi
if ! apt-cache show "busybox-static:$arch" >/dev/null 2>&1; then
  apt-get update -q >/dev/null
fi
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "busybox-static:$arch" >/dev/null)
dpkg-deb -x "$work"/busybox-static_*.deb "$work/root"
mkdir -p "$cache"
cp "$work/root/bin/busybox" "$out.tmp"
chmod 755 "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
