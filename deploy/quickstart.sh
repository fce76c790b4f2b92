#!/usr/bin/env bash
# Kumo on one box in one command: builds the binaries, starts kumod in
# all-in-one mode (daemon + embedded agent), deploys and invokes the example
# function. Must run as root (sandboxes need namespaces and cgroups).
#
#   sudo deploy/quickstart.sh            # start, deploy, invoke; leaves kumod running
#   sudo deploy/quickstart.sh stop       # stop the kumod it started
#   sudo deploy/quickstart.sh uninstall  # stop it and remove what it installed
#
# What it installs: kumod, kumo-agent and kumo in /usr/local/bin; Kumo's data
# (functions, logs, tokens) in /var/lib/kumo; its pid and log in
# /run/kumo-quickstart; missing Debian packages (gcc, python3, iproute2,
# nftables) with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA_DIR=${KUMO_DATA_DIR:-/var/lib/kumo}
STATE=${KUMO_QUICKSTART_STATE:-/run/kumo-quickstart}
ENDPOINT=${KUMO_ENDPOINT:-http://127.0.0.1:7070}
export KUMO_ENDPOINT=$ENDPOINT
# kumod creates its operator token here on first start; the CLI sends it.
export KUMO_TOKEN_FILE=${KUMO_TOKEN_FILE:-$DATA_DIR/control.token}

if [ "$(id -u)" != 0 ]; then
  echo "quickstart: run as root (sandboxes need namespaces and cgroups): sudo $0" >&2
  exit 1
fi

stop_kumod() {
  if [ -f "$STATE/kumod.pid" ]; then
    local pid
    pid=$(cat "$STATE/kumod.pid")
    kill "$pid" 2>/dev/null || true
    # kumod tears its sandboxes down on SIGTERM; give it the time to.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$STATE/kumod.pid"
    echo "kumod stopped"
  else
    echo "no kumod started by quickstart is running"
  fi
}

case "${1:-}" in
  stop)
    stop_kumod
    exit 0
    ;;
  uninstall)
    stop_kumod
    echo "removing /usr/local/bin/{kumod,kumo-agent,kumo}, $DATA_DIR (functions, logs, tokens) and $STATE"
    rm -f /usr/local/bin/kumod /usr/local/bin/kumo-agent /usr/local/bin/kumo
    rm -rf "$DATA_DIR" "$STATE"
    echo "uninstalled (Debian packages it installed, e.g. nftables, are left)"
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: $0 [stop|uninstall]" >&2
    exit 2
    ;;
esac

echo "==> checking prerequisites"
need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
[ -x /usr/bin/python3 ] || need_apt+=(python3)
# The "outbound" network mode needs ip (iproute2) and nft (nftables).
command -v ip >/dev/null || need_apt+=(iproute2)
command -v nft >/dev/null || need_apt+=(nftables)
if [ ${#need_apt[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "quickstart: install ${need_apt[*]} first" >&2; exit 1; }
  echo "    installing ${need_apt[*]} (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null; then
  echo "quickstart: Rust 1.95 or newer is required (https://rustup.rs), or install the" >&2
  echo "prebuilt packages instead: deploy/install.sh kumo*.deb (see README)" >&2
  exit 1
fi
rust_version=$(rustc --version | cut -d' ' -f2)
if [ "$(printf '%s\n' 1.95.0 "$rust_version" | sort -V | head -n1)" != 1.95.0 ]; then
  echo "quickstart: Rust $rust_version is too old; Kumo needs 1.95 or newer (rustup update)" >&2
  exit 1
fi
echo "    cc, Rust $rust_version, /usr/bin/python3 ($(/usr/bin/python3 --version 2>&1)), ip, nft: ok"

BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
echo "==> building kumod, kumo-agent and kumo (release)"
if [ ! -x "$BIN/kumod" ]; then
  echo "    a first build takes about 6 minutes on a 2-core machine (crates are downloaded first)"
fi
cargo build --release -p kumo-daemon -p kumo-agent -p kumo-cli --bins
echo "==> installing them in /usr/local/bin"
install -m 0755 "$BIN/kumod" "$BIN/kumo-agent" "$BIN/kumo" /usr/local/bin/

mkdir -p "$STATE" "$DATA_DIR"
chmod 0700 "$DATA_DIR"
# The MinIO webhook refuses requests without a token: generate one
# (MinIO's MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_<ID>; see deploy/minio.md).
WEBHOOK_TOKEN_FILE=$DATA_DIR/minio-webhook.token
if [ ! -s "$WEBHOOK_TOKEN_FILE" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WEBHOOK_TOKEN_FILE")
fi
export KUMO_TRIGGERS__MINIO_AUTH_TOKEN_FILE=$WEBHOOK_TOKEN_FILE
if [ -f "$STATE/kumod.pid" ] && kill -0 "$(cat "$STATE/kumod.pid")" 2>/dev/null; then
  echo "==> kumod already running (pid $(cat "$STATE/kumod.pid"))"
else
  echo "==> starting kumod --all-in-one (data in $DATA_DIR, log in $STATE/kumod.log)"
  nohup /usr/local/bin/kumod --all-in-one --data-dir "$DATA_DIR" >"$STATE/kumod.log" 2>&1 &
  echo $! >"$STATE/kumod.pid"
fi

echo "==> waiting for kumod and its agent"
for _ in $(seq 1 100); do
  if kumo function list >/dev/null 2>&1; then break; fi
  sleep 0.1
done
kumo function list >/dev/null || { echo "kumod did not start; see $STATE/kumod.log" >&2; exit 1; }

echo "==> deploying the example function 'hello' (deploy/examples/hello)"
if kumo function get hello >/dev/null 2>&1; then
  kumo function update hello --code deploy/examples/hello
else
  kumo function create hello --runtime python3 --handler lambda_function.lambda_handler \
    --code deploy/examples/hello --memory 128 --timeout 3
fi

echo "==> invoking it"
for attempt in $(seq 1 50); do
  # Right after start the embedded agent may still be attaching.
  if out=$(kumo invoke hello --payload '{"name": "Kumo"}' 2>&1); then echo "$out"; break; fi
  case "$out" in *"no agent"*) sleep 0.1 ;; *) echo "$out" >&2; exit 1 ;; esac
done
echo "==> its log"
kumo logs hello | tail -n 5
cat <<MSG

Kumo is running (kumod pid $(cat "$STATE/kumod.pid"), gRPC $ENDPOINT).
Try:   kumo invoke hello --payload '{"name": "you"}'
       kumo logs hello --follow
       kumo agents
The CLI authenticates with the token in $KUMO_TOKEN_FILE (root can read it).
The MinIO webhook (/webhooks/minio) needs the token in $WEBHOOK_TOKEN_FILE.
Stop:  sudo deploy/quickstart.sh stop
Remove everything it installed: sudo deploy/quickstart.sh uninstall
MSG
