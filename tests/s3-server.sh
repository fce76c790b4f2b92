#!/usr/bin/env bash
# The S3-compatible server and Python tools the S3 tests use (no MinIO
# binary is obtainable here; moto's server speaks the S3 API, including
# bucket notification configuration).
#
#   tests/s3-server.sh prepare   # once: a venv with moto[server], boto3, pyzipper, selenium,
#                                # the boto3+pyzipper bundle for test functions,
#                                # and a venv with the AWS CLI
#   tests/s3-server.sh start     # prints the endpoint; PID in $KUMO_TEST_DIR/moto.pid
#   tests/s3-server.sh stop
#
# Paths (override with the variables):
#   KUMO_TEST_VENV    /var/tmp/kumo-test-venv     moto, boto3, pyzipper for the tests
#   KUMO_TEST_VENDOR  /var/tmp/kumo-test-vendor   boto3 + pyzipper to bundle in packages
#   KUMO_TEST_RIC     /var/tmp/kumo-test-ric      awslambdaric (AWS's Python runtime client) to bundle
#   KUMO_TEST_AWSCLI  /var/tmp/kumo-test-awscli   the AWS CLI (awscli from PyPI), in its own venv
set -euo pipefail
VENV="${KUMO_TEST_VENV:-/var/tmp/kumo-test-venv}"
VENDOR="${KUMO_TEST_VENDOR:-/var/tmp/kumo-test-vendor}"
RIC="${KUMO_TEST_RIC:-/var/tmp/kumo-test-ric}"
AWSCLI="${KUMO_TEST_AWSCLI:-/var/tmp/kumo-test-awscli}"
STATE="${KUMO_TEST_DIR:-/var/tmp/kumo-test-s3}"
PY=/usr/bin/python3

prepare() {
  if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import boto3, pyzipper, selenium' 2>/dev/null; then
    echo "==> preparing $VENV (moto[server], boto3, pyzipper, selenium for the web console test)" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' boto3 pyzipper selenium
  fi
  if [ ! -f "$VENDOR/.complete" ]; then
    echo "==> preparing $VENDOR (boto3 + pyzipper for test packages)" >&2
    rm -rf "$VENDOR"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --target "$VENDOR" boto3 pyzipper
    touch "$VENDOR/.complete"
  fi
  if [ ! -f "$RIC/.complete" ]; then
    echo "==> preparing $RIC (awslambdaric for test packages)" >&2
    rm -rf "$RIC"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --target "$RIC" awslambdaric
    touch "$RIC/.complete"
  fi
  # The AWS CLI pins its own botocore, so it lives in a venv of its own.
  if [ ! -x "$AWSCLI/bin/aws" ]; then
    echo "==> preparing $AWSCLI (the AWS CLI)" >&2
    "$PY" -m venv "$AWSCLI"
    "$AWSCLI/bin/pip" install --quiet --disable-pip-version-check awscli
  fi
}

start() {
  prepare
  mkdir -p "$STATE"
  local port
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$VENV/bin/python" "$(dirname "$0")/moto_server.py" -H 127.0.0.1 -p "$port" >"$STATE/moto.log" 2>&1 &
  echo $! >"$STATE/moto.pid"
  for _ in $(seq 1 100); do
    if "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
      echo "http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "moto_server did not start; see $STATE/moto.log" >&2
  return 1
}

stop() {
  if [ -f "$STATE/moto.pid" ]; then
    kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true
    rm -f "$STATE/moto.pid"
  fi
}

case "${1:-}" in
  prepare) prepare ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 prepare|start|stop" >&2; exit 2 ;;
esac
