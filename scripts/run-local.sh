#!/usr/bin/env bash
# Starts a local scrapegrid cluster on loopback: a storage node, a control
# plane, two scraper nodes and a demo target, with deploy/local/prometheus.yml.
# Ctrl-C stops everything. Data goes to ${DATA_DIR:-./data}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --bins
bin=${CARGO_TARGET_DIR:-target}/debug
data=${DATA_DIR:-./data}
mkdir -p "$data"
pids=()
# Stop in reverse order, each waited for: the scrapers drain first, while the
# control plane and the storage node still take their handovers and batches.
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM
# Each process runs in its own session: Ctrl-C signals the terminal's whole
# foreground process group, which would stop the storage node while the
# scrapers still drain into it; this way only the script hears it and
# stops them in order. (A script's background jobs are not process group
# leaders, so setsid makes the session without forking and $! stays the
# process's PID.)

setsid python3 -m http.server 9100 --bind 127.0.0.1 --directory deploy/local/demo >"$data/demo.log" 2>&1 & pids+=($!)
setsid $bin/storage-node --data-dir "$data/storage" --grpc-addr 127.0.0.1:9095 --http-addr 127.0.0.1:9090 >"$data/storage.log" 2>&1 & pids+=($!)
setsid $bin/control-plane --config deploy/local/prometheus.yml --grpc-addr 127.0.0.1:9091 --http-addr 127.0.0.1:9092 \
  --storage http://127.0.0.1:9095 >"$data/control-plane.log" 2>&1 & pids+=($!)
setsid $bin/scraper-node --control-plane http://127.0.0.1:9091 --http-addr 127.0.0.1:9093 --id scraper-a --outbox.dir "$data" >"$data/scraper-a.log" 2>&1 & pids+=($!)
setsid $bin/scraper-node --control-plane http://127.0.0.1:9091 --http-addr 127.0.0.1:9094 --id scraper-b --outbox.dir "$data" >"$data/scraper-b.log" 2>&1 & pids+=($!)

cat <<TXT
scrapegrid is running (logs in $data/*.log):
  storage node   Prometheus API http://127.0.0.1:9090   gRPC 127.0.0.1:9095   web UI http://127.0.0.1:9090/graph
  control plane  targets        http://127.0.0.1:9092/api/v1/targets   gRPC 127.0.0.1:9091   web UI http://127.0.0.1:9092/targets
  scrapers       /metrics       http://127.0.0.1:9093  http://127.0.0.1:9094
  demo target    /metrics       http://127.0.0.1:9100/metrics
Query it (first samples arrive after a few seconds):
  curl -s 'http://127.0.0.1:9090/api/v1/query?query=up'
  promtool query instant http://127.0.0.1:9090 up
  $bin/scrapegridctl targets            # or members, query, drain scraper-b, ...
A scraper that drains (scrapegridctl drain) exits; the rest keeps running.
Ctrl-C stops the cluster.
TXT
# The demo target, the storage node and the control plane: if one of them
# exits, the cluster stops.
wait -n "${pids[@]:0:3}" || true
echo "a process exited; stopping the cluster (see $data/*.log)" >&2
