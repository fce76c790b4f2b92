#!/usr/bin/env bash
# Builds the Debian packages and the tarball from the test build's binaries,
# installs the packages on this machine (as a new server would), checks
# files, modes, the kumo user, the tokens and the units, starts the packaged
# kumod as that user and calls it with the packaged CLI and token, then
# purges everything and checks nothing is left. Needs root.
#
#   sudo BIN_DIR=target/debug tests/packages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}
out=$(mktemp -d)
pid=
packages=(kumo kumod kumo-agent)

fail() { echo "packages: $*" >&2; exit 1; }
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  dpkg --purge "${packages[@]}" >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT

for package in "${packages[@]}"; do
  if dpkg -s "$package" >/dev/null 2>&1; then
    fail "$package is already installed on this machine; not touching it"
  fi
done

OUT_DIR="$out" BIN_DIR="$BIN_DIR" DEB_COMPRESSION=gzip deploy/build-packages.sh >/dev/null
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
for package in "${packages[@]}"; do
  [ -f "$out/${package}_${version}_${arch}.deb" ] || fail "${package}_${version}_${arch}.deb was not built"
done
tarball="$out/kumo-$version-$arch-linux.tar.gz"
[ -f "$tarball" ] || fail "the tarball was not built"

echo "    installing the packages"
dpkg -i "$out"/*.deb >"$out/dpkg.log" 2>&1 || { cat "$out/dpkg.log"; fail "dpkg -i failed"; }

check_mode() { # path mode owner
  [ -e "$1" ] || fail "$1 is missing"
  local got
  got=$(stat -c '%a %U' "$1")
  [ "$got" = "$2 $3" ] || fail "$1 is '$got', expected '$2 $3'"
}
check_mode /usr/bin/kumod 755 root
check_mode /usr/bin/kumo-agent 755 root
check_mode /usr/bin/kumo 755 root
check_mode /etc/kumo/kumod.toml 644 root
check_mode /etc/kumo/agent.toml 644 root
check_mode /lib/systemd/system/kumod.service 644 root
check_mode /lib/systemd/system/kumo-agent.service 644 root
check_mode /var/lib/kumo 700 kumo
check_mode /var/lib/kumo-agent 700 root
for token in control agent minio-webhook; do
  check_mode "/var/lib/kumo/$token.token" 600 kumo
  [ "$(wc -c <"/var/lib/kumo/$token.token")" -ge 64 ] || fail "$token.token is too short"
done
gzip -t /usr/share/man/man1/kumo.1.gz || fail "the man page is not valid gzip"
zcat /usr/share/man/man1/kumo.1.gz | grep -q 'kumo\\-invoke' || fail "the man page lacks kumo-invoke"
grep -q '_kumo' /usr/share/bash-completion/completions/kumo || fail "no bash completion"

uid=$(id -u kumo) || fail "no kumo user"
[ "$uid" -lt 1000 ] || fail "kumo is not a system user (uid $uid)"
[ "$(getent passwd kumo | cut -d: -f7)" = /usr/sbin/nologin ] || fail "kumo has a login shell"
grep -q '^User=kumo$' /lib/systemd/system/kumod.service || fail "kumod.service has no User=kumo"
grep -q '^ExecStart=/usr/bin/kumod ' /lib/systemd/system/kumod.service || fail "kumod.service does not run /usr/bin/kumod"
if command -v systemd-analyze >/dev/null; then
  warnings=$(systemd-analyze verify /lib/systemd/system/kumod.service /lib/systemd/system/kumo-agent.service 2>&1) || true
  [ -z "$warnings" ] || fail "systemd-analyze verify: $warnings"
fi

echo "    starting the packaged kumod as the kumo user"
grpc_port=$(( 20000 + RANDOM % 20000 ))
http_port=$(( grpc_port + 1 ))
KUMO_LISTEN=127.0.0.1:$grpc_port KUMO_HTTP_LISTEN=127.0.0.1:$http_port \
  runuser -u kumo -- /usr/bin/kumod --config /etc/kumo/kumod.toml >"$out/kumod.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if /usr/bin/kumo --endpoint "http://127.0.0.1:$grpc_port" --token-file /var/lib/kumo/control.token \
    function list >"$out/list.txt" 2>&1; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { cat "$out/kumod.log"; fail "kumod exited"; }
  sleep 0.1
done
/usr/bin/kumo --endpoint "http://127.0.0.1:$grpc_port" --token-file /var/lib/kumo/control.token \
  function list >/dev/null || { cat "$out/kumod.log" "$out/list.txt"; fail "the packaged CLI cannot call kumod"; }
# The webhook token the package made is the one kumod checks.
webhook_token=$(tr -d '\n' </var/lib/kumo/minio-webhook.token)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer wrong" \
  "http://127.0.0.1:$http_port/webhooks/minio" -d '{}')
[ "$code" = 401 ] || fail "webhook with a wrong token answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $webhook_token" \
  -H 'Content-Type: application/json' "http://127.0.0.1:$http_port/webhooks/minio" --data-binary @fuzz/seeds/minio_webhook/delete.json)
[ "$code" = 200 ] || fail "webhook with the package's token answered $code"
# Files kumod made are the kumo user's and private.
for file in /var/lib/kumo/*; do
  [ "$(stat -c %U "$file")" = kumo ] || fail "$file is not owned by kumo"
  mode=$(stat -c %a "$file")
  [ $((8#$mode & 8#077)) = 0 ] || fail "$file is mode $mode"
done
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

echo "    purging the packages"
dpkg --purge "${packages[@]}" >"$out/purge.log" 2>&1 || { cat "$out/purge.log"; fail "dpkg --purge failed"; }
for left in /usr/bin/kumod /usr/bin/kumo-agent /usr/bin/kumo /etc/kumo /var/lib/kumo /var/lib/kumo-agent \
  /lib/systemd/system/kumod.service /usr/share/man/man1/kumo.1.gz; do
  [ ! -e "$left" ] || fail "$left is left after purge"
done
! getent passwd kumo >/dev/null || fail "the kumo user is left after purge"

echo "    the tarball installs without Rust (staged)"
mkdir "$out/unpacked" "$out/stage"
tar -C "$out/unpacked" -xzf "$tarball"
(cd "$out/unpacked/kumo-$version-$arch-linux" &&
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DESTDIR="$out/stage" deploy/install.sh >/dev/null)
for installed in usr/local/bin/kumod usr/local/bin/kumo-agent usr/local/bin/kumo \
  etc/systemd/system/kumod.service etc/kumo/kumod.toml etc/kumo/agent.toml; do
  [ -e "$out/stage/$installed" ] || fail "the tarball's install.sh did not install $installed"
done
echo "    packages: built, installed, checked, purged; tarball installs"
