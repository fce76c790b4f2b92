#!/usr/bin/env bash
# The benchmark command: builds the release binaries and runs every scenario
# against a release kumod --all-in-one, each beside its baseline, then
# writes docs/performance.md, docs/performance.json and docs/performance.png.
#   sudo bench/run.sh            # full run (several minutes; cron needs ~3)
#   sudo bench/run.sh --quick    # under 2 minutes; CI smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bwrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } || true
# The chart's font (bench/src/chart.rs).
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core; } || true
cargo build --release --quiet --workspace --bins
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/kumo-bench" "$@"
