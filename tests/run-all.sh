#!/usr/bin/env bash
# The whole Kumo test suite, as a new user runs it (as root: the sandbox and
# end-to-end tests need namespaces and cgroups):
#   sudo tests/run-all.sh
# Installs missing prerequisites, checks formatting and lints, builds the
# binaries the end-to-end tests start, and runs every test. Each step prints
# how long it took.
#
# Network registries it may use on a fresh machine: Debian's apt mirrors
# (system packages, the VM kernel), crates.io (Rust crates, cargo-fuzz),
# PyPI (moto, boto3, awslambdaric, virtme-ng; into venvs under /var/tmp), npm
# (aws-lambda-ric, into /var/tmp) and rustup's channel (the rustfmt/clippy components, a nightly for fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
suite_started=$SECONDS
step_started=$SECONDS
step() {
  echo "    ($((SECONDS - step_started)) s)"
  step_started=$SECONDS
  echo "==> $*"
}

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
[ -x /usr/bin/python3 ] || need_apt+=(python3)
# A host package for the python3 runtime's site-packages opt-in test.
/usr/bin/python3 -c "import yaml" 2>/dev/null || need_apt+=(python3-yaml)
[ -f /usr/include/python3.11/Python.h ] || [ -n "$(ls /usr/include/python3*/Python.h 2>/dev/null)" ] || need_apt+=(python3-dev)
command -v hostname >/dev/null || need_apt+=(hostname)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v nsenter >/dev/null || need_apt+=(util-linux)
command -v nft >/dev/null || need_apt+=(nftables)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v pgrep >/dev/null || need_apt+=(procps)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
command -v strip >/dev/null || need_apt+=(binutils)
command -v script >/dev/null || need_apt+=(bsdutils)
command -v setpriv >/dev/null || need_apt+=(util-linux)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# The nodejsNN.x runtimes, and AWS's npm aws-lambda-ric (tests/node-ric.sh
# compiles its native client once).
[ -x /usr/bin/node ] || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v g++ >/dev/null || need_apt+=(g++)
for tool in make cmake autoconf automake; do
  command -v "$tool" >/dev/null || need_apt+=("$tool")
done
command -v libtoolize >/dev/null || need_apt+=(libtool)
# The web console's browser test (tests/tests/web_console.rs).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    echo "==> installing the $component component"
    rustup component add "$component"
  fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "    cargo-nextest is not installed: the tests run with cargo test (slower, same tests)"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "building binaries"
cargo build --workspace --bins --quiet

step "deploy/install.sh (staged) and systemd units (systemd-analyze verify; any warning fails)"
stage="$(mktemp -d)"
BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" DESTDIR="$stage" deploy/install.sh >/dev/null
for installed in usr/local/bin/kumod usr/local/bin/kumo-agent usr/local/bin/kumo \
  etc/systemd/system/kumod.service etc/kumo/kumod.toml etc/kumo/agent.toml; do
  [ -e "$stage/$installed" ] || { echo "install.sh did not install $installed"; exit 1; }
done
# Verify the units as installed, pointing ExecStart at the staged binaries
# (verify checks that the executables exist; this machine need not have
# Kumo installed in /usr/local/bin).
units="$stage/units"
mkdir -p "$units"
for unit in kumod.service kumo-agent.service; do
  sed "s#/usr/local/bin/#$stage/usr/local/bin/#g" "systemd/$unit" >"$units/$unit"
done
unit_warnings="$(systemd-analyze verify "$units/kumod.service" "$units/kumo-agent.service" 2>&1)"
if [ -n "$unit_warnings" ]; then
  echo "$unit_warnings"
  exit 1
fi
rm -rf "$stage"

step "Debian packages and tarball: build, install, check, purge (tests/packages.sh)"
BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" tests/packages.sh

step "S3 test server (moto; tests/s3-server.sh)"
tests/s3-server.sh prepare
KUMO_TEST_DIR="$(mktemp -d)"
export KUMO_TEST_DIR
KUMO_TEST_S3_ENDPOINT="$(tests/s3-server.sh start)"
export KUMO_TEST_S3_ENDPOINT
trap 'tests/s3-server.sh stop; rm -rf "$KUMO_TEST_DIR"' EXIT
echo "    $KUMO_TEST_S3_ENDPOINT"

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

# The agent's cgroup v2 path on a cgroup v2 kernel, in a VM (this host may
# well be cgroup v1). KUMO_SKIP_VM=1 skips it, except in CI.
if [ "${KUMO_SKIP_VM:-0}" = 1 ]; then
  if [ "${KUMO_REQUIRE_ROOT_TESTS:-0}" = 1 ]; then
    echo "KUMO_SKIP_VM=1 with KUMO_REQUIRE_ROOT_TESTS=1: CI must run the cgroup v2 VM step"
    exit 1
  fi
  echo "==> cgroup v2 (VM): skipped (KUMO_SKIP_VM=1)"
else
  step "cgroup v2 (VM): tests/cgroup2-vm.sh"
  tests/cgroup2-vm.sh
fi

# The benchmark harness must run and produce every number; no timing is
# asserted (bench/README.md).
if [ "${KUMO_SKIP_BENCH:-0}" != 1 ]; then
  step "benchmark harness smoke run: bench/run.sh --quick"
  bench_out="$KUMO_TEST_DIR/bench"
  mkdir -p "$bench_out"
  if ! bench/run.sh --quick --out-dir "$bench_out" >"$bench_out/run.log" 2>&1; then
    cat "$bench_out/run.log"
    exit 1
  fi
  /usr/bin/python3 - "$bench_out/performance.json" "$bench_out/performance.png" <<'PY'
import json, math, sys
results = json.load(open(sys.argv[1]))
def numbers(value):
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    return []
for scenario in ["cold", "warm", "throughput", "density", "ingest", "state"]:
    values = numbers(results[scenario])
    assert values and all(math.isfinite(v) for v in values), f"{scenario}: {results[scenario]}"
print("    every scenario produced numbers")
png = open(sys.argv[2], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, f"performance.png: {len(png)} bytes"
print("    performance.png drawn")
PY
fi

# Brief fuzzing of the parsers that take untrusted input (cargo-fuzz needs
# a nightly toolchain; both are installed when missing).
fuzz_seconds="${KUMO_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  step "fuzzing, ${fuzz_seconds} s per target"
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked --quiet
  for target in schedule_expression minio_webhook; do
    corpus="$(mktemp -d)"
    (cd fuzz && cargo +nightly fuzz run --release "$target" "$corpus" "seeds/$target" -- \
      -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 2>&1 | tail -n 3)
    rm -rf "$corpus"
  done
fi
echo "    ($((SECONDS - step_started)) s)"
echo "==> all passed in $((SECONDS - suite_started)) s"
