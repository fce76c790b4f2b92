#!/usr/bin/env bash
# The whole Kumo test suite, as a new user runs it (as root: the sandbox and
# end-to-end tests need namespaces and cgroups):
#   sudo tests/run-all.sh
# Installs missing prerequisites, checks formatting and lints, builds the
# binaries the end-to-end tests start, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
[ -x /usr/bin/python3 ] || need_apt+=(python3)
[ -f /usr/include/python3.11/Python.h ] || [ -n "$(ls /usr/include/python3*/Python.h 2>/dev/null)" ] || need_apt+=(python3-dev)
command -v hostname >/dev/null || need_apt+=(hostname)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> building binaries"
cargo build --workspace --bins --quiet
echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
