#!/usr/bin/env bash
# Installs Drover from this checkout as a systemd service. Idempotent: run it again to upgrade;
# it never overwrites /etc/drover/config.yaml or anything in /var/lib/drover.
#   sudo packaging/install.sh            build, install to /usr/local, enable and (re)start
#   sudo packaging/install.sh --no-start install only
set -euo pipefail

start=1
[ "${1:-}" = "--no-start" ] && start=0
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install.sh: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

echo "==> building"
cd "$here"
npm ci --no-audit --no-fund
npm run build
tarball=$(npm pack --silent | tail -n 1)
trap 'rm -f "$here/$tarball"' EXIT

echo "==> installing $tarball to /usr/local"
npm install --global --prefix /usr/local --no-audit --no-fund "$here/$tarball"

echo "==> user, directories, config"
if ! id drover >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/drover --shell /usr/sbin/nologin drover
fi
install -d -m 0700 -o drover -g drover /var/lib/drover
install -d -m 0755 /etc/drover
[ -f /etc/drover/config.yaml ] || install -m 0644 "$here/packaging/config.yaml" /etc/drover/config.yaml

echo "==> systemd unit"
install -m 0644 "$here/packaging/systemd/drover.service" /etc/systemd/system/drover.service
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable drover.service
  if [ "$start" = 1 ]; then
    systemctl restart drover.service
    echo "Drover is running: journalctl -u drover -f"
    echo "First start only: the admin token is in /var/lib/drover/initial-admin-token"
  fi
else
  echo "systemd is not running here; start it by hand: sudo -u drover drover serve --config /etc/drover/config.yaml --data-dir /var/lib/drover"
fi
