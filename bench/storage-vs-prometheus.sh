#!/usr/bin/env bash
# Side-by-side storage benchmark: scrapegrid's storage node and Prometheus
# (Debian's 2.42) on the same input, in one run. Prints a table; asserts
# nothing (a benchmark measures, tests check).
#
#   bench/storage-vs-prometheus.sh            # 10,000 series x 120 samples
#   SERIES=2000 SAMPLES=1000 JITTER_MS=0 bench/storage-vs-prometheus.sh
#
# What it measures, for both stores:
#   - ingest: the same remote-write requests (one scrape round of every series
#     per round, 2,000 series per request) pushed to Prometheus's receiver
#     (--web.enable-remote-write-receiver) and to the storage node's
#     /api/v1/write; samples per second (client wall time; both servers get the
#     same single client), samples per CPU-second the server spent (user +
#     system, from /proc), and resident memory per active series after ingest.
#   - at rest: bytes per sample and index bytes per series. Prometheus: blocks
#     built from the same samples by `promtool tsdb create-blocks-from
#     openmetrics` (chunks/ vs index). scrapegrid: the storage node's data
#     directory after compaction (samples+chunks column families vs the series,
#     series_by_labels and postings column families), by examples/db_size.
#   - query: the latency of a selector over every series for one hour, through
#     each server's /api/v1/query_range (step 15s), median of 5.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
SERIES=${SERIES:-10000}
SAMPLES=${SAMPLES:-120}
JITTER_MS=${JITTER_MS:-5}
cargo build --release -q -p storage-node --bins --examples
bin=${CARGO_TARGET_DIR:-target}/release
gen=$bin/examples/remote_write_load
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_ready() { for _ in $(seq 1 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
end_ms=$(( $(date +%s) / 15 * 15 * 1000 ))
total=$(( SERIES * SAMPLES ))

echo "input: $SERIES series x $SAMPLES samples = $total samples (15s interval, +-${JITTER_MS}ms jitter)"

# --- Prometheus: ingest through its remote-write receiver -------------------
pport=$(free_port)
printf 'global:\n  scrape_interval: 15s\n' > "$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$pport" --web.enable-remote-write-receiver \
  --storage.tsdb.retention.time=30d >"$work/prometheus.log" 2>&1 & ppid=$!; pids+=("$ppid")
wait_ready "http://127.0.0.1:$pport/-/ready"
prom_base_rss=$(rss_kb "$ppid")
prom_cpu0=$(cpu_s "$ppid")
prom_ingest=$($gen --series "$SERIES" --samples "$SAMPLES" --end-ms "$end_ms" --jitter-ms "$JITTER_MS" --url "http://127.0.0.1:$pport/api/v1/write")
prom_rss=$(rss_kb "$ppid")
prom_cpu=$(awk -v a="$(cpu_s "$ppid")" -v b="$prom_cpu0" 'BEGIN {print a-b}')

# --- scrapegrid: ingest through the storage node's remote-write endpoint ----
shttp=$(free_port); sgrpc=$(free_port)
$bin/storage-node --data-dir "$work/sg" --grpc-addr "127.0.0.1:$sgrpc" --http-addr "127.0.0.1:$shttp" \
  >"$work/storage.log" 2>&1 & spid=$!; pids+=("$spid")
wait_ready "http://127.0.0.1:$shttp/-/ready"
sg_base_rss=$(rss_kb "$spid")
sg_cpu0=$(cpu_s "$spid")
sg_ingest=$($gen --series "$SERIES" --samples "$SAMPLES" --end-ms "$end_ms" --jitter-ms "$JITTER_MS" --url "http://127.0.0.1:$shttp/api/v1/write")
sg_rss=$(rss_kb "$spid")
sg_cpu=$(awk -v a="$(cpu_s "$spid")" -v b="$sg_cpu0" 'BEGIN {print a-b}')

# --- query latency: one hour of every series ------------------------------
query_ms() {
  local url=$1 best=()
  local start=$(( end_ms / 1000 - 3600 )) end=$(( end_ms / 1000 ))
  for _ in 1 2 3 4 5; do
    best+=("$(curl -s -o /dev/null -w '%{time_total}' "$url/api/v1/query_range?query=%7Bjob%3D%22bench%22%7D&start=$start&end=$end&step=15")")
  done
  printf '%s\n' "${best[@]}" | sort -n | sed -n 3p | awk '{printf "%.1f", $1*1000}'
}
prom_q=$(query_ms "http://127.0.0.1:$pport")
sg_q=$(query_ms "http://127.0.0.1:$shttp")

# --- at rest --------------------------------------------------------------
kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
sg_rest=$($bin/examples/db_size --data-dir "$work/sg")
$gen --series "$SERIES" --samples "$SAMPLES" --end-ms "$end_ms" --jitter-ms "$JITTER_MS" --openmetrics "$work/data.om" >/dev/null
promtool tsdb create-blocks-from openmetrics "$work/data.om" "$work/blocks" >/dev/null
prom_chunks=$(cat "$work"/blocks/*/chunks/* | wc -c)
prom_index=$(cat "$work"/blocks/*/index | wc -c)

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
per_series_kb() { awk -v a="$1" -v b="$2" -v n="$SERIES" 'BEGIN {printf "%.2f", (a-b)/n}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }

printf '\n%-44s %16s %16s\n' "" "prometheus 2.42" "scrapegrid"
printf '%-44s %16s %16s\n' "ingest samples/s (remote write, 1 client)" "$(field samples_per_second "$prom_ingest")" "$(field samples_per_second "$sg_ingest")"
printf '%-44s %16s %16s\n' "ingest samples per server CPU-second" "$(ratio "$total" "$prom_cpu")" "$(ratio "$total" "$sg_cpu")"
printf '%-44s %16s %16s\n' "RSS KB per active series (after - before)" "$(per_series_kb "$prom_rss" "$prom_base_rss")" "$(per_series_kb "$sg_rss" "$sg_base_rss")"
printf '%-44s %16s %16s\n' "bytes per sample at rest (chunks)" "$(ratio "$prom_chunks" "$total")" "$(field bytes_per_sample "$sg_rest")"
printf '%-44s %16s %16s\n' "index bytes per series at rest" "$(ratio "$prom_index" "$SERIES")" "$(field index_bytes_per_series "$sg_rest")"
printf '%-44s %16s %16s\n' "query_range ms, all series, 1h, step 15s" "$prom_q" "$sg_q"
