#!/usr/bin/env bash
# Runs every scrapegrid test: installs what the tests need (Debian packages),
# builds the binaries the end-to-end tests start, runs the test suite, then
# the benchmarks' smoke runs and every fuzz target for a short while.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
# The benchmarks' smoke runs: seconds each, so they never rot.
bash bench/promql-vs-prometheus.sh --smoke
bash bench/cluster-vs-peers.sh --smoke
bash bench/egress-vs-vmagent.sh --smoke
bash bench/hostile-targets.sh --smoke
cargo test -q -p control-plane --bench control_scale -- --smoke
# Every fuzz target for 20 s (cargo-fuzz on stable Rust).
bash scripts/fuzz.sh --smoke
