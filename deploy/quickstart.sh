#!/usr/bin/env bash
# Kumo on one box in one command: builds the binaries, starts kumod in
# all-in-one mode (daemon + embedded agent), deploys and invokes the example
# function. Must run as root (sandboxes need namespaces and cgroups).
#
#   sudo deploy/quickstart.sh          # start, deploy, invoke; leaves kumod running
#   sudo deploy/quickstart.sh stop     # stop the kumod it started
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

if [ "${1:-}" = stop ]; then
  if [ -f "$STATE/kumod.pid" ]; then
    kill "$(cat "$STATE/kumod.pid")" 2>/dev/null || true
    rm -f "$STATE/kumod.pid"
    echo "kumod stopped"
  else
    echo "no kumod started by quickstart is running"
  fi
  exit 0
fi

command -v cargo >/dev/null || { echo "quickstart: cargo (Rust 1.95+) is required" >&2; exit 1; }
[ -x /usr/bin/python3 ] || { apt-get update -qq && apt-get install -y -qq python3; }
# The "outbound" network mode needs ip (iproute2) and nft (nftables).
if ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
  apt-get update -qq && apt-get install -y -qq iproute2 nftables
fi

echo "==> building kumod, kumo-agent and kumo (release)"
cargo build --release --bins --quiet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
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
MSG
