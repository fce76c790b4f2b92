#!/usr/bin/env bash
# Installs Kumo on this machine: binaries to /usr/local/bin, systemd units to
# /etc/systemd/system, example configs to /etc/kumo (existing files are kept),
# and the docs to /usr/local/share/doc/kumo. Builds release binaries first
# unless BIN_DIR points at built ones.
#
#   sudo deploy/install.sh                 # then: systemctl enable --now kumod kumo-agent
#   sudo DESTDIR=/tmp/stage deploy/install.sh   # stage into a directory instead
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR="${DESTDIR:-}"
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --quiet --workspace --bins
  BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi

install -d "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/kumo" \
  "$DESTDIR/usr/local/share/doc/kumo"
for bin in kumod kumo-agent kumo; do
  install -m 0755 "$BIN_DIR/$bin" "$DESTDIR/usr/local/bin/$bin"
done
install -m 0644 systemd/kumod.service systemd/kumo-agent.service "$DESTDIR/etc/systemd/system/"
for config in kumod.toml agent.toml; do
  if [ -e "$DESTDIR/etc/kumo/$config" ]; then
    echo "keeping the existing /etc/kumo/$config"
  else
    install -m 0640 "deploy/$config" "$DESTDIR/etc/kumo/$config"
  fi
done
install -m 0644 README.md docs/operations.md deploy/minio.md "$DESTDIR/usr/local/share/doc/kumo/"

# The agent's "outbound" network mode needs ip (iproute2) and nft (nftables).
if [ -z "$DESTDIR" ] && { ! command -v ip >/dev/null || ! command -v nft >/dev/null; }; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables
  else
    echo "warning: install iproute2 and nftables for the outbound network mode" >&2
  fi
fi

# Reload systemd when it runs this machine (and we are not staging).
if [ -z "$DESTDIR" ] && [ "$(ps -o comm= -p 1 2>/dev/null)" = systemd ]; then
  systemctl daemon-reload
  echo "installed; start with: systemctl enable --now kumod kumo-agent"
else
  echo "installed into ${DESTDIR:-/}"
fi
