#!/usr/bin/env bash
# Fetches the peer TFTP servers the benchmark compares against, without installing them:
# atftpd conflicts with tftpd-hpa as a Debian package, so both are unpacked into the cache.
# The mirror comes from this machine's apt sources. Prints the cache directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../test/fixtures/debian-mirror.sh"
cache=${DROVER_BENCH_CACHE:-$HOME/.cache/drover-bench}
arch=$(dpkg --print-architecture)
if [ ! -x "$cache/root/usr/sbin/atftpd" ] || [ ! -x "$cache/root/usr/sbin/in.tftpd" ]; then
  mkdir -p "$cache/debs"
  apt_arch_download "$arch" "$cache/debs" atftpd tftpd-hpa >&2
  for d in "$cache"/debs/*.deb; do dpkg-deb -x "$d" "$cache/root"; done
fi
echo "$cache/root"
