#!/usr/bin/env bash
# PromQL latency and memory: the storage node beside Prometheus 2.42 on the
# same remote-written data, in one run (tests/examples/promql_bench.rs).
# Sizes: COUNTERS (10000), GAUGES (100000), HISTOGRAMS (1000), HOURS (24),
# GAUGE_HOURS (2: the gauges span only the last hours),
# RUNS (5); QUERIES=<part of a name> runs only those queries.
# A quick look: COUNTERS=1000 GAUGES=5000 HISTOGRAMS=100 HOURS=2.
#
# --smoke: a few seconds on tiny data with the debug binaries that
# scripts/test.sh has built, so that CI runs the benchmark end to end
# (figures meaningless; it checks that every query still succeeds on both).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--smoke" ]]; then
  COUNTERS=50 GAUGES=200 HISTOGRAMS=10 HOURS=1 RUNS=1 SETTLE=0 \
    cargo run -q -p scrapegrid-tests --example promql_bench
  exit 0
fi
bash scripts/install-deps.sh
cargo build --release --bins
cargo run --release -p scrapegrid-tests --example promql_bench
