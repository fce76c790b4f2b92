#!/usr/bin/env bash
# Builds Kumo once for N servers: three Debian packages and a tarball.
#
#   deploy/build-packages.sh                 # release build, output in dist/
#   OUT_DIR=/tmp/out BIN_DIR=target/debug deploy/build-packages.sh   # from built binaries
#
# Output:
#   kumo_<version>_<arch>.deb        the CLI, its shell completions and man page
#   kumod_<version>_<arch>.deb       the daemon, its systemd unit (runs as the
#                                    `kumo` system user), /etc/kumo/kumod.toml,
#                                    /var/lib/kumo (0700) with tokens made at install
#   kumo-agent_<version>_<arch>.deb  the node agent, its unit, /etc/kumo/agent.toml
#   kumo-<version>-<arch>-linux.tar.gz  the same binaries, units, configs and
#                                    deploy/install.sh, for hosts without dpkg
# Needs dpkg-deb (Debian's dpkg package) and strip (binutils); nothing is
# installed on this host. DEB_COMPRESSION=gzip builds faster than xz.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT_DIR=${OUT_DIR:-$ROOT/dist}
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
ARCH=$(dpkg --print-architecture)
command -v dpkg-deb >/dev/null || { echo "build-packages: dpkg-deb is required (apt-get install dpkg)" >&2; exit 1; }

if [ -z "${BIN_DIR:-}" ]; then
  echo "==> building kumod, kumo-agent and kumo (release)"
  cargo build --release -p kumo-daemon -p kumo-agent -p kumo-cli --bins
  BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
for bin in kumod kumo-agent kumo; do
  [ -x "$BIN_DIR/$bin" ] || { echo "build-packages: $BIN_DIR/$bin is missing" >&2; exit 1; }
done
mkdir -p "$OUT_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A unit as packaged: binaries in /usr/bin, docs under /usr/share/doc.
packaged_unit() {
  sed -e 's#/usr/local/bin/#/usr/bin/#g' \
    -e 's#file:///usr/local/share/doc/kumo/#file:///usr/share/doc/kumod/#g' "systemd/$1"
}

# service_prerm UNIT: the prerm that stops and disables UNIT on removal.
service_prerm() {
  cat <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
  systemctl stop $1.service >/dev/null 2>&1 || true
  systemctl disable $1.service >/dev/null 2>&1 || true
fi
EOF
}

# control_file PACKAGE DEPENDS DESCRIPTION...
control_file() {
  local package=$1 depends=$2
  shift 2
  cat <<EOF
Package: $package
Version: $VERSION
Architecture: $ARCH
Maintainer: Kumo developers <kumo@example.invalid>
Section: admin
Priority: optional
Depends: $depends
Homepage: https://example.invalid/kumo
Description: $1
EOF
  shift
  for line in "$@"; do echo " $line"; done
}

# Packaged binaries carry no debug info (as Debian's packages).
install_binary() { # binary destination
  install -D -m 0755 "$BIN_DIR/$1" "$2"
  strip --strip-debug "$2"
}

build_deb() {
  local tree=$1
  find "$tree" -type d -exec chmod 0755 {} +
  dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$tree" "$OUT_DIR" >/dev/null
}

# ---- kumo: the CLI --------------------------------------------------------
cli="$work/kumo"
install_binary kumo "$cli/usr/bin/kumo"
install -d "$cli/usr/share/bash-completion/completions" "$cli/usr/share/zsh/vendor-completions" \
  "$cli/usr/share/fish/vendor_completions.d" "$cli/usr/share/man/man1" "$cli/usr/share/doc/kumo"
"$BIN_DIR/kumo" completions bash >"$cli/usr/share/bash-completion/completions/kumo"
"$BIN_DIR/kumo" completions zsh >"$cli/usr/share/zsh/vendor-completions/_kumo"
"$BIN_DIR/kumo" completions fish >"$cli/usr/share/fish/vendor_completions.d/kumo.fish"
"$BIN_DIR/kumo" man | gzip -9n >"$cli/usr/share/man/man1/kumo.1.gz"
install -m 0644 README.md "$cli/usr/share/doc/kumo/"
install -d "$cli/DEBIAN"
control_file kumo "libc6" "Kumo command-line client" \
  "kumo deploys, invokes and inspects functions on a Kumo cluster" \
  "(a self-hosted platform with AWS Lambda's programming model)." >"$cli/DEBIAN/control"
build_deb "$cli"

# ---- kumod: the daemon ----------------------------------------------------
daemon="$work/kumod"
install_binary kumod "$daemon/usr/bin/kumod"
install -d "$daemon/lib/systemd/system" "$daemon/etc/kumo" "$daemon/usr/share/doc/kumod" "$daemon/DEBIAN"
# The package's unit runs kumod as the unprivileged `kumo` user.
packaged_unit kumod.service | sed 's/^\[Service\]$/[Service]\nUser=kumo\nGroup=kumo/' \
  >"$daemon/lib/systemd/system/kumod.service"
# The MinIO webhook's token is made at install (see postinst).
sed 's|^# minio_auth_token_file = .*|minio_auth_token_file = "/var/lib/kumo/minio-webhook.token"|' \
  deploy/kumod.toml >"$daemon/etc/kumo/kumod.toml"
chmod 0644 "$daemon/lib/systemd/system/kumod.service" "$daemon/etc/kumo/kumod.toml"
install -m 0644 README.md docs/operations.md deploy/minio.md "$daemon/usr/share/doc/kumod/"
echo /etc/kumo/kumod.toml >"$daemon/DEBIAN/conffiles"
control_file kumod "libc6, adduser" "Kumo scheduler daemon" \
  "kumod stores functions, triggers and queued events and places" \
  "invocations on kumo-agent nodes." >"$daemon/DEBIAN/control"
cat >"$daemon/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# kumod's user, its private state directory and the tokens it checks.
set -e
if [ "$1" = configure ]; then
  if ! getent passwd kumo >/dev/null; then
    adduser --system --group --home /var/lib/kumo --no-create-home \
      --shell /usr/sbin/nologin --gecos "Kumo daemon" kumo >/dev/null
  fi
  install -d -o kumo -g kumo -m 0700 /var/lib/kumo
  for token in control agent minio-webhook; do
    file=/var/lib/kumo/$token.token
    if [ ! -s "$file" ]; then
      (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$file" && echo >>"$file")
      chown kumo:kumo "$file"
    fi
  done
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
  fi
  echo "kumod installed; start it with: systemctl enable --now kumod"
  echo "operator token: /var/lib/kumo/control.token; agent join token: /var/lib/kumo/agent.token"
fi
EOF
service_prerm kumod >"$daemon/DEBIAN/prerm"
cat >"$daemon/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# purge removes kumod's data (functions, queued events, logs, tokens) and user.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
  rm -rf /var/lib/kumo
  if getent passwd kumo >/dev/null; then
    deluser --system kumo >/dev/null 2>&1 || true
  fi
  if getent group kumo >/dev/null; then
    delgroup --system kumo >/dev/null 2>&1 || true
  fi
  rmdir /etc/kumo 2>/dev/null || true
fi
EOF
chmod 0755 "$daemon/DEBIAN/postinst" "$daemon/DEBIAN/prerm" "$daemon/DEBIAN/postrm"
build_deb "$daemon"

# ---- kumo-agent: the node agent ------------------------------------------
agent="$work/kumo-agent"
install_binary kumo-agent "$agent/usr/bin/kumo-agent"
install -d "$agent/lib/systemd/system" "$agent/etc/kumo" "$agent/usr/share/doc/kumo-agent" "$agent/DEBIAN"
packaged_unit kumo-agent.service >"$agent/lib/systemd/system/kumo-agent.service"
install -m 0644 deploy/agent.toml "$agent/etc/kumo/agent.toml"
chmod 0644 "$agent/lib/systemd/system/kumo-agent.service"
install -m 0644 docs/operations.md "$agent/usr/share/doc/kumo-agent/"
echo /etc/kumo/agent.toml >"$agent/DEBIAN/conffiles"
control_file kumo-agent "libc6, python3, iproute2, nftables" "Kumo node agent" \
  "kumo-agent runs function instances for kumod in cgroup and namespace" \
  "sandboxes. It runs as root; the python3 runtime uses /usr/bin/python3." >"$agent/DEBIAN/control"
cat >"$agent/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  install -d -m 0700 /var/lib/kumo-agent
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
  fi
  echo "kumo-agent installed; set server and token_file in /etc/kumo/agent.toml, then: systemctl enable --now kumo-agent"
fi
EOF
service_prerm kumo-agent >"$agent/DEBIAN/prerm"
cat >"$agent/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# purge removes the agent's package cache and scratch space.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
  rm -rf /var/lib/kumo-agent
  rmdir /etc/kumo 2>/dev/null || true
fi
EOF
chmod 0755 "$agent/DEBIAN/postinst" "$agent/DEBIAN/prerm" "$agent/DEBIAN/postrm"
build_deb "$agent"

# ---- the tarball: the repository's install layout plus bin/ ---------------
name="kumo-$VERSION-$ARCH-linux"
tree="$work/$name"
install -d "$tree/bin" "$tree/deploy" "$tree/systemd" "$tree/docs" "$tree/share/man/man1" \
  "$tree/share/bash-completion/completions"
cp "$cli/usr/bin/kumo" "$daemon/usr/bin/kumod" "$agent/usr/bin/kumo-agent" "$tree/bin/"
install -m 0755 deploy/install.sh "$tree/deploy/"
install -m 0644 deploy/kumod.toml deploy/agent.toml deploy/minio.md "$tree/deploy/"
install -m 0644 systemd/kumod.service systemd/kumo-agent.service "$tree/systemd/"
install -m 0644 docs/operations.md "$tree/docs/"
install -m 0644 README.md "$tree/"
cp "$cli/usr/share/man/man1/kumo.1.gz" "$tree/share/man/man1/"
cp "$cli/usr/share/bash-completion/completions/kumo" "$tree/share/bash-completion/completions/"
tar -C "$work" --owner=0 --group=0 -czf "$OUT_DIR/$name.tar.gz" "$name"

echo "==> packages in $OUT_DIR"
ls -1 "$OUT_DIR" | grep -E "^(kumo|kumod|kumo-agent)[_-]$VERSION" | sed 's/^/    /'
