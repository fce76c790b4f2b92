#!/usr/bin/env bash
# Installs Kumo on this machine: binaries to /usr/local/bin, systemd units to
# /etc/systemd/system, example configs to /etc/kumo (existing files are kept),
# and the docs to /usr/local/share/doc/kumo. Takes, in this order: Debian
# packages named on the command line (deploy/build-packages.sh makes them),
# BIN_DIR with built binaries, the bin/ directory of an unpacked release
# tarball, or builds release binaries (needs Rust) as a last resort.
#
#   sudo deploy/install.sh                 # then: systemctl enable --now kumod kumo-agent
#   sudo deploy/install.sh dist/*.deb      # install the packages (no Rust needed)
#   sudo DESTDIR=/tmp/stage deploy/install.sh   # stage into a directory instead
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR="${DESTDIR:-}"
if [ $# -gt 0 ]; then
  debs=()
  for deb in "$@"; do
    case "$deb" in
      *.deb) debs+=("$(realpath "$deb")") ;;
      *) echo "install.sh: '$deb' is not a .deb package" >&2; exit 2 ;;
    esac
  done
  # apt-get resolves the packages' dependencies (iproute2, nftables, python3).
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${debs[@]}"
  exit 0
fi
if [ -z "${BIN_DIR:-}" ]; then
  if [ -x bin/kumod ] && [ -x bin/kumo-agent ] && [ -x bin/kumo ]; then
    BIN_DIR=bin
  elif command -v cargo >/dev/null; then
    cargo build --release -p kumo-daemon -p kumo-agent -p kumo-cli --bins
    BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
  else
    echo "install.sh: no binaries: give .deb packages, set BIN_DIR, run it from an unpacked release tarball, or install Rust" >&2
    exit 1
  fi
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
