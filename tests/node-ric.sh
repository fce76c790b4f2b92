#!/usr/bin/env bash
# AWS's Node.js runtime interface client (npm `aws-lambda-ric`) for the
# `provided` test in tests/tests/node_runtime.rs. `npm install` compiles its
# native Runtime API client (curl and aws-lambda-cpp: needs g++, make,
# cmake, autoconf, automake, libtool), which takes a minute or two, so the
# result is cached outside the clone, keyed by version, and built once.
#
#   tests/node-ric.sh prepare   # prints the cached package directory
#
# Paths (override with the variables):
#   KUMO_TEST_NODE_RIC_VERSION  3.3.0 (the last release whose engines allow Node 20)
#   KUMO_TEST_NODE_RIC          /var/tmp/kumo-test-node-ric-<version>
set -euo pipefail
VERSION="${KUMO_TEST_NODE_RIC_VERSION:-3.3.0}"
DIR="${KUMO_TEST_NODE_RIC:-/var/tmp/kumo-test-node-ric-$VERSION}"

prepare() {
  if [ ! -f "$DIR/.complete" ]; then
    echo "==> preparing $DIR (npm install aws-lambda-ric@$VERSION, compiles native code)" >&2
    rm -rf "$DIR"
    mkdir -p "$DIR"
    echo '{"name":"kumo-test-node-ric","private":true}' >"$DIR/package.json"
    local started=$SECONDS
    (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error "aws-lambda-ric@$VERSION" >&2)
    echo "==> aws-lambda-ric@$VERSION built in $((SECONDS - started)) s" >&2
    # The sources its native client was compiled from (about 150 MB) are
    # not needed to run it.
    rm -rf "$DIR/node_modules/aws-lambda-ric/deps"
    touch "$DIR/.complete"
  fi
  echo "$DIR/node_modules/aws-lambda-ric"
}

case "${1:-}" in
  prepare) prepare ;;
  *) echo "usage: $0 prepare" >&2; exit 2 ;;
esac
