#!/usr/bin/env bash
# Remote write egress beside vmagent (issue 15): the same simulated targets,
# the same prometheus.yml, the same receiver (a fresh VictoriaMetrics 1.79
# single node per run, Debian's `victoria-metrics`), one system after the
# other on this machine:
#   - scrapegrid:        storage node + control plane + 1 scraper, no egress
#                        (the baseline the egress cost is measured against);
#   - scrapegrid-egress: the same with the storage node's --config naming
#                        the receiver in `remote_write`;
#   - scrapegrid-direct: control plane + 1 scraper in direct mode, no
#                        storage node (--remote-write.config: the scraper's
#                        embedded node is the queue and keeps a local copy);
#   - scrapegrid-agent:  the same with --remote-write.local-copy=false (the
#                        queue only, as vmagent and Prometheus's agent mode);
#   - vmagent:           Debian's vmagent 1.79 scraping with
#                        -promscrape.config and remote-writing to the
#                        receiver (Prometheus's protocol, snappy), its queue
#                        in -remoteWrite.tmpDataPath.
# Prints a markdown table on stdout (progress on stderr). It asserts nothing
# about the figures; it exits 1 when a system did not start, died, or sent
# nothing, since that run's figures would mean nothing.
#
#   bench/egress-vs-vmagent.sh               # 100,000 series at 5s, WARMUP=30 WINDOW=120 OUTAGE=30
#   SERIES=20000 WINDOW=60 bench/egress-vs-vmagent.sh
#   bench/egress-vs-vmagent.sh --smoke       # about a minute, debug build (CI)
#   ROUNDS=3 SYSTEMS="scrapegrid-agent vmagent" bench/egress-vs-vmagent.sh
#                                            # each system 3 times, interleaved: one row per run
#
# Per run, after WARMUP seconds, over WINDOW seconds:
#   - sent/s: rows the receiver inserted (`vm_rows_inserted_total` of type
#     promremotewrite) over the window (the baseline sends nothing: its
#     figure is the samples it stored, from scrape_samples_scraped);
#   - CPU-s per million samples: user + system seconds of the system's
#     processes (not the receiver's, not the targets') from /proc/<pid>/stat,
#     per million of those samples; for scrapegrid-egress, -direct and
#     -agent also the egress's own share, their CPU per sample less the
#     baseline's (the latest baseline run before them);
#   - wire bytes per sample: compressed request bytes the system counts
#     (scrapegrid_storage_remote_write_sent_bytes_total,
#     vmagent_remotewrite_bytes_sent_total) over the rows inserted;
#   - queue bytes per sample: then the receiver is stopped for OUTAGE
#     seconds; the bytes queued for it (the storage node's
#     scrapegrid_storage_remote_write_pending_bytes: records as they sit in
#     RocksDB, uncompressed; vmagent: `du -sb` of its tmpDataPath) over the
#     samples scraped meanwhile (the window's rate times OUTAGE);
#   - catch-up s: seconds from the receiver's restart until the queue is
#     empty again (pending bytes 0) and the receiver holds every row.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
if [[ "${1:-}" == "--smoke" ]]; then
  smoke=1
  SERIES=${SERIES:-2000} SERIES_PER_TARGET=${SERIES_PER_TARGET:-200} INTERVAL=${INTERVAL:-1s}
  WARMUP=${WARMUP:-4} WINDOW=${WINDOW:-8} OUTAGE=${OUTAGE:-4}
fi
bash scripts/install-deps.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh
SERIES=${SERIES:-100000}
SERIES_PER_TARGET=${SERIES_PER_TARGET:-1000}
INTERVAL=${INTERVAL:-5s}
WARMUP=${WARMUP:-30}
WINDOW=${WINDOW:-120}
OUTAGE=${OUTAGE:-30}
SYSTEMS=${SYSTEMS:-scrapegrid scrapegrid-egress scrapegrid-direct scrapegrid-agent vmagent}
ROUNDS=${ROUNDS:-1}
# Samples per remote-write request, for every system alike: unset, each
# keeps its default (scrapegrid and Prometheus 2.42: 500 per request,
# batch_send_deadline 5s; vmagent: 10,000 rows per block, flushed every
# 1s); SEND_BATCH=N gives scrapegrid's queue max_samples_per_send N and
# batch_send_deadline 1s, and vmagent -remoteWrite.maxRowsPerBlock=N.
SEND_BATCH=${SEND_BATCH:-}
build_binaries "$smoke"
work=$(mktemp -d)
sys=()         # the running system's processes, in start order
sink_pid=""    # the receiver
sim_pid=""     # the target simulator

cleanup() {
  stop_system
  if [[ -n $sink_pid ]]; then stop_pid "$sink_pid"; fi
  if [[ -n $sim_pid ]]; then stop_pid "$sim_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The sum of a metric's series (a name, or a name with labels to match as
# a prefix of the line) on a /metrics page; 0 when absent.
metric() {
  curl -sf --max-time 30 "$1" 2>/dev/null | awk -v m="$2" '
    index($0, m) == 1 && substr($0, length(m) + 1, 1) ~ /[{ ]/ {s += $NF} END {printf "%.0f", s + 0}'
}

# The receiver, on a fixed port for the run so a restart keeps the URL.
start_sink() {
  victoria-metrics -storageDataPath="$1/sink" -httpListenAddr="127.0.0.1:$sink_port" -retentionPeriod=1d \
    >>"$1/sink.log" 2>&1 & sink_pid=$!
  wait_ready "http://127.0.0.1:$sink_port/health"
}
sink_rows() { metric "http://127.0.0.1:$sink_port/metrics" 'vm_rows_inserted_total{type="promremotewrite"}'; }

# The remote_write section of scrapegrid's configs.
remote_write_yml() {
  printf 'remote_write:\n  - url: http://127.0.0.1:%s/api/v1/write\n    name: sink\n' "$sink_port"
  if [[ -n $SEND_BATCH ]]; then
    printf '    queue_config:\n      max_samples_per_send: %s\n      batch_send_deadline: 1s\n' "$SEND_BATCH"
  fi
}

# Starts one system; sets metrics_url (where its egress counters are),
# query_url (scrapegrid's query API) and queue_dir (vmagent's).
start_system() {
  local name=$1 r=$2 port sgrpc chttp cgrpc rhttp
  port=$(free_port)
  case $name in
    scrapegrid|scrapegrid-egress)
      local config=()
      if [[ $name == scrapegrid-egress ]]; then
        remote_write_yml >"$r/egress.yml"
        config=(--config "$r/egress.yml")
      fi
      sgrpc=$(free_port); chttp=$(free_port); cgrpc=$(free_port); rhttp=$(free_port)
      "$bin/storage-node" --data-dir "$r/data" --grpc-addr "127.0.0.1:$sgrpc" --http-addr "127.0.0.1:$port" "${config[@]}" \
        >"$r/storage.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$port/-/ready" || return 1
      "$bin/control-plane" --config "$yml" --grpc-addr "127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$chttp" \
        --storage "http://127.0.0.1:$sgrpc" >"$r/control-plane.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$chttp/-/healthy" || return 1
      "$bin/scraper-node" --control-plane "http://127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$rhttp" --id bench-1 \
        --outbox.dir "$r" >"$r/scraper.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$rhttp/-/healthy" || return 1
      metrics_url=http://127.0.0.1:$port/metrics
      query_url=http://127.0.0.1:$port ;;
    scrapegrid-direct|scrapegrid-agent)
      local copy=true
      if [[ $name == scrapegrid-agent ]]; then copy=false; fi
      remote_write_yml >"$r/egress.yml"
      cat "$yml" >>"$r/egress.yml"
      chttp=$(free_port); cgrpc=$(free_port)
      "$bin/control-plane" --config "$yml" --grpc-addr "127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$chttp" \
        >"$r/control-plane.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$chttp/-/healthy" || return 1
      "$bin/scraper-node" --control-plane "http://127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$port" --id bench-1 --outbox.dir "$r" \
        --remote-write.config "$r/egress.yml" --remote-write.data-dir "$r/direct" --remote-write.local-copy="$copy" \
        >"$r/scraper.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$port/-/healthy" || return 1
      metrics_url=http://127.0.0.1:$port/metrics ;;
    vmagent)
      queue_dir=$r/queue
      local rows=()
      if [[ -n $SEND_BATCH ]]; then rows=(-remoteWrite.maxRowsPerBlock="$SEND_BATCH"); fi
      vmagent -promscrape.config="$yml" -remoteWrite.url="http://127.0.0.1:$sink_port/api/v1/write" \
        -remoteWrite.tmpDataPath="$queue_dir" -httpListenAddr="127.0.0.1:$port" "${rows[@]}" \
        >"$r/vmagent.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$port/health" || return 1
      metrics_url=http://127.0.0.1:$port/metrics ;;
    *) echo "unknown system $name (scrapegrid, scrapegrid-egress, scrapegrid-direct, scrapegrid-agent, vmagent)" >&2; return 1 ;;
  esac
}

# Queued bytes for the receiver.
queued_bytes() {
  case $1 in
    scrapegrid-egress|scrapegrid-direct|scrapegrid-agent) metric "$metrics_url" scrapegrid_storage_remote_write_pending_bytes ;;
    vmagent) du -sb "$queue_dir" | cut -f1 ;;
    *) echo 0 ;;
  esac
}
sent_bytes() {
  case $1 in
    scrapegrid-egress|scrapegrid-direct|scrapegrid-agent) metric "$metrics_url" scrapegrid_storage_remote_write_sent_bytes_total ;;
    vmagent) metric "$metrics_url" vmagent_remotewrite_bytes_sent_total ;;
    *) echo 0 ;;
  esac
}

run_one() {
  local name=$1 r=$work/$1-$2 status=ok p
  mkdir -p "$r"
  local cpu=nan rows=nan wire=nan queued=nan catchup=nan
  sink_port=$(free_port)
  start_sink "$r" || { echo "receiver did not start" >&2; return 1; }
  if ! start_system "$name" "$r"; then
    status=no-start
  else
    sleep "$WARMUP"
    local cpu0=0 cpu1=0 rows0 rows1 bytes0 bytes1 end
    rows0=$(sink_rows); bytes0=$(sent_bytes "$name")
    for p in "${sys[@]}"; do cpu0=$(calc '%.3f' "$cpu0 + $(cpu_s "$p")"); done
    sleep "$WINDOW"
    for p in "${sys[@]}"; do cpu1=$(calc '%.3f' "$cpu1 + $(cpu_s "$p")"); done
    end=$(date +%s)
    rows1=$(sink_rows); bytes1=$(sent_bytes "$name")
    for p in "${sys[@]}"; do alive "$p" || status=died; done
    cpu=$(calc '%.3f' "$cpu1 - $cpu0")
    if [[ $name == scrapegrid ]]; then
      sleep 3
      rows=$(query_value "$query_url" "sum(sum_over_time(scrape_samples_scraped{job=\"bench\"}[${WINDOW}s]))" "$end")
    else
      rows=$(( rows1 - rows0 ))
      wire=$(( bytes1 - bytes0 ))
      # The outage: the receiver stops, the queue fills for OUTAGE seconds.
      stop_pid "$sink_pid"; sink_pid=""
      sleep "$OUTAGE"
      queued=$(queued_bytes "$name")
      local t0 empty=0
      t0=$(date +%s.%N)
      start_sink "$r" || status=no-sink
      for _ in $(seq 1 1200); do
        if [[ $(queued_bytes "$name") == 0 || ($name == vmagent && $(metric "$metrics_url" vmagent_remotewrite_pending_data_bytes) == 0) ]]; then
          empty=1; break
        fi
        sleep 0.1
      done
      if (( empty )); then catchup=$(calc '%.1f' "$(date +%s.%N) - $t0"); fi
    fi
    if ! awk -v s="$rows" 'BEGIN {exit !(s + 0 > 0)}'; then status=nothing-sent; fi
  fi
  stop_system
  if [[ -n $sink_pid ]]; then stop_pid "$sink_pid"; sink_pid=""; fi
  (IFS=$'\t'; echo "$name $status $cpu $rows $wire $queued $catchup" | tr ' ' '\t') >>"$work/runs.tsv"
  printf '%s: %s, %s samples in %ss, %s CPU-s, %s wire bytes, %s queued bytes, catch-up %s s\n' \
    "$name" "$status" "$rows" "$WINDOW" "$cpu" "$wire" "$queued" "$catchup" >&2
  if [[ $status != ok ]]; then
    tail -n 15 "$r"/*.log >&2 || true
    return 1
  fi
}

targets=$(( SERIES / SERIES_PER_TARGET ))
"$bin/examples/target_sim" --targets "$targets" --series "$SERIES" --interval "$INTERVAL" \
  >"$work/sim.out" 2>"$work/sim.err" & sim_pid=$!
for _ in $(seq 1 300); do grep -qx ready "$work/sim.out" && break; sleep 0.1; done
yml=$work/prometheus.yml
{
  printf 'global:\n  scrape_interval: %s\n  scrape_timeout: %s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets:\n' "$INTERVAL" "$INTERVAL"
  sed -n 's/^listening http /          - /p' "$work/sim.out"
} >"$yml"

failed=0
for round in $(seq 1 "$ROUNDS"); do
  for s in $SYSTEMS; do run_one "$s" "$round" || failed=1; done
done

echo "### Remote write egress beside vmagent: $SERIES series every $INTERVAL, window ${WINDOW}s, outage ${OUTAGE}s, samples per request: ${SEND_BATCH:-the defaults}"
echo
echo "| system | samples/s | CPU-s / M samples | egress CPU-s / M samples | wire B/sample | queue B/sample | catch-up s |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' -v w="$WINDOW" -v o="$OUTAGE" '
  { name[NR] = $1; cpu[NR] = $3; rows[NR] = $4; wire[NR] = $5; queued[NR] = $6; catchup[NR] = $7 }
  END {
    for (i = 1; i <= NR; i++) {
      per = rows[i] + 0 > 0 ? cpu[i] / rows[i] * 1e6 : "nan"
      if (name[i] == "scrapegrid" && rows[i] + 0 > 0) base = per
      own = (name[i] ~ /^scrapegrid-/ && base != "") ? sprintf("%.3f", per - base) : "-"
      wb = (wire[i] != "nan" && rows[i] + 0 > 0) ? sprintf("%.2f", wire[i] / rows[i]) : "-"
      qb = (queued[i] != "nan" && rows[i] + 0 > 0) ? sprintf("%.2f", queued[i] / (rows[i] / w * o)) : "-"
      printf "| %s | %.0f | %.3f | %s | %s | %s | %s |\n", name[i], rows[i] / w, per, own, wb, qb, (catchup[i] == "nan" ? "-" : catchup[i])
    }
  }' "$work/runs.tsv"
exit $failed
