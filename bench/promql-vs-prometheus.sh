#!/usr/bin/env bash
# PromQL latency and memory: the storage node beside Prometheus 2.42 on the
# same remote-written data, in one run (tests/examples/promql_bench.rs).
# Sizes: COUNTERS (10000), GAUGES (100000), HISTOGRAMS (1000), HOURS (24),
# RUNS (5). A quick look: COUNTERS=1000 GAUGES=5000 HISTOGRAMS=100 HOURS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --bins
cargo run --release -p scrapegrid-tests --example promql_bench
