#!/usr/bin/env bash
# The whole cluster beside its peers (issue 14): Prometheus (Debian's 2.42),
# VictoriaMetrics single node (Debian's 1.79, scraping with
# -promscrape.config) and scrapegrid with one and with two scrapers, one
# after the other on this machine, each scraping the same simulated targets
# with the same prometheus.yml. Prints markdown tables on stdout (progress on
# stderr). It asserts nothing about the figures (a benchmark measures, tests
# check); it exits 1 when a system did not start, died, ingested no samples
# or failed a query, since that run's figures would mean nothing.
#
#   bench/cluster-vs-peers.sh              # 100,000 and 400,000 series at 5s, 2 repeats (about 1.5 h)
#   SIZES=50000 REPEATS=1 SYSTEMS="prometheus scrapegrid-1" bench/cluster-vs-peers.sh
#   CHURN_EVERY=12 CHURN_SHARE=0.1 bench/cluster-vs-peers.sh   # a tenth of the pods replaced every minute
#   bench/cluster-vs-peers.sh --smoke      # about 80 s, debug build (CI)
#
# Knobs: SIZES (total series, one round each: "100000 400000"),
# SERIES_PER_TARGET (1000, so SIZE/1000 targets), INTERVAL (5s: the
# scrape_interval and scrape_timeout), WARMUP (60 s), WINDOW (240 s), REPEATS
# (2), SYSTEMS (prometheus victoriametrics scrapegrid-1 scrapegrid-2;
# scrapegrid-N runs N scrapers), CHURN_EVERY (0, off; else every that many
# intervals a share CHURN_SHARE, 0.1, of the pods is replaced by new ones).
# --smoke: SIZES=2000 SERIES_PER_TARGET=200 INTERVAL=1s WARMUP=4 WINDOW=8
# REPEATS=1 with the debug binaries (figures meaningless; it checks that all
# four systems start, ingest and answer the queries). Knobs set in the
# environment still win.
#
# The targets: tests/examples/target_sim.rs, started once per size and kept
# for every run of that size: SIZE/SERIES_PER_TARGET loopback targets with
# counters (bench_requests_total), gauges (bench_temperature_celsius) and
# 12-bucket histograms (bench_request_duration_seconds) whose values change
# every interval, text 0.0.4, gzipped when asked (all three ask).
#
# Each run starts its system fresh (a new data directory, new ports), waits
# WARMUP seconds, then measures over the next WINDOW seconds (W below):
#   - samples/s: `sum(sum_over_time(scrape_samples_scraped{job="bench"}[W]))`
#     at the window's end, through the system's own /api/v1/query, over W;
#     scrapes from `sum(count_over_time(up{job="bench"}[W]))`;
#   - CPU-s per million samples: user + system seconds over the window from
#     /proc/<pid>/stat, summed over the system's processes (scrapegrid: the
#     storage node, the control plane and every scraper), per million of
#     those samples;
#   - RSS bytes per active series: steady is the mean over the window of the
#     processes' summed VmRSS, sampled every 5 s; peak is their summed VmHWM
#     (an upper bound for scrapegrid: each process's own peak); both divided
#     by `count({job="bench"})` at the window's end (the targets' series plus
#     up and the scrape_* series, as each system stores them);
#   - disk bytes per sample: `du -sb` of the data directory (scrapegrid: the
#     storage node's --data-dir) after the window, over every sample ingested
#     since the system started (the same sum_over_time, over that span).
#     VictoriaMetrics is asked to flush its buffers first
#     (/internal/force_flush). Prometheus compacts its head into a block only
#     after two hours, so its figure is the WAL (and any head chunks on disk)
#     of a few minutes: what it writes, not what it keeps at rest. The storage
#     node's figure includes RocksDB's WAL and unflushed memtables' logs too;
#   - scrape p50/p99 ms: `quantile(q, quantile_over_time(q,
#     scrape_duration_seconds{job="bench"}[W]))`, each system's own figure
#     (each times a scrape a little differently);
#   - query ms: after the window, while scraping goes on, three instant queries
#     (rate of the counters, histogram_quantile over the histograms, topk over
#     the gauges) five times each, the median of curl's time_total.
# VictoriaMetrics runs with -search.latencyOffset=0s (samples queryable at
# once, as in the others), -search.disableCache (range queries only; all of
# these are instant queries) and -search.maxUniqueTimeseries raised above
# its 300,000 default (count({job="bench"}) at 400,000 series). Its range
# windows are open on the left where Prometheus's are closed: one sample more
# or less over W. The tables give each run, then per size the median over
# the repeats with its range, scrapegrid-1's ratios to Prometheus and to
# VictoriaMetrics, scrapegrid-2's scale-out efficiency and, across sizes,
# how CPU per sample grows with the series count.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
if [[ "${1:-}" == "--smoke" ]]; then
  smoke=1
  SIZES=${SIZES:-2000} SERIES_PER_TARGET=${SERIES_PER_TARGET:-200} INTERVAL=${INTERVAL:-1s}
  WARMUP=${WARMUP:-4} WINDOW=${WINDOW:-8} REPEATS=${REPEATS:-1}
fi
bash scripts/install-deps.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh
SIZES=${SIZES:-100000 400000}
SERIES_PER_TARGET=${SERIES_PER_TARGET:-1000}
INTERVAL=${INTERVAL:-5s}
WARMUP=${WARMUP:-60}
WINDOW=${WINDOW:-240}
REPEATS=${REPEATS:-2}
SYSTEMS=${SYSTEMS:-prometheus victoriametrics scrapegrid-1 scrapegrid-2}
CHURN_EVERY=${CHURN_EVERY:-0}
CHURN_SHARE=${CHURN_SHARE:-0.1}
build_binaries "$smoke"
work=$(mktemp -d)
sys=()     # the running system's processes, in start order
sim_pid="" # the running target simulator

cleanup() {
  stop_system
  if [[ -n $sim_pid ]]; then stop_pid "$sim_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the median of five runs of an instant query at the server's now, in
# ms of curl's time_total; "err" when a run fails.
query_ms() {
  local out times=()
  for _ in 1 2 3 4 5; do
    out=$(curl -s --max-time 120 -o "$work/answer.json" -w '%{http_code} %{time_total}' --get "$1/api/v1/query" \
      --data-urlencode "query=$2") || { echo err; return 0; }
    [[ ${out%% *} == 200 ]] || { echo err; return 0; }
    times+=("${out#* }")
  done
  printf '%s\n' "${times[@]}" | sort -g | sed -n 3p | awk '{printf "%.1f", $1 * 1000}'
}

# Starts one system with a fresh data directory under the run directory $2;
# sets url (its query API) and data (its data directory) and appends its
# processes to sys in start order. Returns 1 when it does not get ready.
start_system() {
  local name=$1 r=$2 port
  port=$(free_port)
  url=http://127.0.0.1:$port
  data=$r/data
  case $name in
    prometheus)
      prometheus --config.file="$yml" --storage.tsdb.path="$data" --web.listen-address="127.0.0.1:$port" \
        >"$r/prometheus.log" 2>&1 & sys+=($!)
      wait_ready "$url/-/ready" ;;
    victoriametrics)
      victoria-metrics -promscrape.config="$yml" -storageDataPath="$data" -httpListenAddr="127.0.0.1:$port" \
        -retentionPeriod=1d -search.latencyOffset=0s -search.disableCache -search.maxUniqueTimeseries=100000000 \
        >"$r/victoriametrics.log" 2>&1 & sys+=($!)
      wait_ready "$url/health" ;;
    scrapegrid-[1-9]*)
      local sgrpc chttp cgrpc rhttp i health=()
      sgrpc=$(free_port); chttp=$(free_port); cgrpc=$(free_port)
      "$bin/storage-node" --data-dir "$data" --grpc-addr "127.0.0.1:$sgrpc" --http-addr "127.0.0.1:$port" \
        >"$r/storage.log" 2>&1 & sys+=($!)
      wait_ready "$url/-/ready" || return 1
      "$bin/control-plane" --config "$yml" --grpc-addr "127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$chttp" \
        --storage "http://127.0.0.1:$sgrpc" >"$r/control-plane.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$chttp/-/healthy" || return 1
      # All scrapers join within the control plane's startup grace (2 s), so
      # the targets are placed once rather than handed over at the start.
      for i in $(seq 1 "${name#scrapegrid-}"); do
        rhttp=$(free_port); health+=("http://127.0.0.1:$rhttp/-/healthy")
        "$bin/scraper-node" --control-plane "http://127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$rhttp" --id "bench-$i" \
          --outbox.dir "$r" >"$r/scraper-$i.log" 2>&1 & sys+=($!)
      done
      for i in "${health[@]}"; do wait_ready "$i" || return 1; done ;;
    *) echo "unknown system $name (prometheus, victoriametrics, scrapegrid-N)" >&2; return 1 ;;
  esac
}

# One run of one system at the current size: appends a line of raw figures
# to $work/runs.tsv (the report derives the table's columns from them).
run_one() {
  local size=$1 name=$2 rep=$3 r=$work/$1/$2-$3 status=ok p
  mkdir -p "$r"
  local started window=$WINDOW cpu=nan samples=nan scrapes=nan series=nan steady=nan peak=nan
  local disk=nan total=nan p50=nan p99=nan q_rate=err q_hist=err q_topk=err
  started=$(date +%s)
  if ! start_system "$name" "$r"; then
    status=no-start
  else
    sleep "$WARMUP"
    # The window starts on a whole second, so [W] at its end is exactly it.
    local t0 end cpu0=0 cpu1=0 rss=0 n=0 left
    t0=$(( $(date +%s) + 1 ))
    sleep "$(calc '%.3f' "$t0 - $(now)")"
    for p in "${sys[@]}"; do cpu0=$(calc '%.3f' "$cpu0 + $(cpu_s "$p")"); done
    end=$(( t0 + WINDOW ))
    while left=$(calc '%.3f' "$end - $(now)"); [[ $left != -* && $left != 0.000 ]]; do
      sleep "$(calc '%.3f' "$left < 5 ? $left : 5")"
      for p in "${sys[@]}"; do rss=$(( rss + $(rss_kb "$p") )); done
      n=$(( n + 1 ))
    done
    for p in "${sys[@]}"; do cpu1=$(calc '%.3f' "$cpu1 + $(cpu_s "$p")"); done
    for p in "${sys[@]}"; do alive "$p" || status=died; done
    alive "$sim_pid" || status=targets-died
    cpu=$(calc '%.3f' "$cpu1 - $cpu0")
    steady=$(( rss / (n > 0 ? n : 1) ))
    peak=0
    for p in "${sys[@]}"; do peak=$(( peak + $(hwm_kb "$p") )); done
    sleep 3 # let the last scrapes of the window reach the store
    if [[ $name == victoriametrics ]]; then curl -sf "$url/internal/force_flush" >/dev/null || true; fi

    samples=$(query_value "$url" "sum(sum_over_time(scrape_samples_scraped{job=\"bench\"}[${WINDOW}s]))" "$end")
    scrapes=$(query_value "$url" "sum(count_over_time(up{job=\"bench\"}[${WINDOW}s]))" "$end")
    series=$(query_value "$url" 'count({job="bench"})' "$end")
    p50=$(query_value "$url" "quantile(0.5, quantile_over_time(0.5, scrape_duration_seconds{job=\"bench\"}[${WINDOW}s]))" "$end")
    p99=$(query_value "$url" "quantile(0.99, quantile_over_time(0.99, scrape_duration_seconds{job=\"bench\"}[${WINDOW}s]))" "$end")

    local at
    at=$(date +%s)
    if [[ $name == victoriametrics ]]; then curl -sf "$url/internal/force_flush" >/dev/null || true; fi
    disk=$(du -sb "$data" 2>/dev/null | cut -f1) || disk=nan
    total=$(query_value "$url" "sum(sum_over_time(scrape_samples_scraped{job=\"bench\"}[$(( at - started + 1 ))s]))" "$at")

    q_rate=$(query_ms "$url" 'sum(rate(bench_requests_total[1m]))')
    q_hist=$(query_ms "$url" 'histogram_quantile(0.9, sum by (le) (rate(bench_request_duration_seconds_bucket[1m])))')
    q_topk=$(query_ms "$url" 'topk(10, avg by (service) (bench_temperature_celsius))')

    if [[ $status == ok ]] && ! awk -v s="$samples" 'BEGIN {exit !(s + 0 > 0)}'; then status=no-samples; fi
    if [[ $status == ok && "$q_rate $q_hist $q_topk" == *err* ]]; then status=query-error; fi
  fi
  stop_system
  local fields=("$size" "$name" "$rep" "$status" "$window" "$cpu" "$samples" "$scrapes" "$series"
    "$steady" "$peak" "$disk" "$total" "$p50" "$p99" "$q_rate" "$q_hist" "$q_topk")
  (IFS=$'\t'; echo "${fields[*]}") >>"$work/runs.tsv"
  printf '%s series, %s #%s: %s, %s samples in %ss, %s CPU-s, %s active series, %s bytes on disk\n' \
    "$size" "$name" "$rep" "$status" "$samples" "$window" "$cpu" "$series" "$disk" >&2
  if [[ $status != ok ]]; then
    echo "--- the last log lines of $name (run $rep):" >&2
    tail -n 15 "$r"/*.log >&2 || true
  fi
  rm -rf "$data"
}

# Prints the markdown report from runs.tsv and sizes.tsv.
cat >"$work/report.py" <<'PY'
import statistics, sys

work, systems = sys.argv[1], sys.argv[2].split()
runs = [l.rstrip("\n").split("\t") for l in open(f"{work}/runs.tsv") if l.strip()]
sizes = [l.split() for l in open(f"{work}/sizes.tsv") if l.strip()]

def num(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return v if v == v and abs(v) != float("inf") else None

def div(a, b, scale=1.0):
    return a * scale / b if a is not None and b else None

def ms(s):
    return s * 1000 if s is not None else None

COLUMNS = [  # name, format
    ("samples/s", "%.0f"), ("CPU-s per M samples", "%.3f"),
    ("RSS B/series steady", "%.0f"), ("RSS B/series peak", "%.0f"), ("disk B/sample", "%.2f"),
    ("scrape p50 ms", "%.2f"), ("scrape p99 ms", "%.2f"),
    ("rate ms", "%.1f"), ("histogram_quantile ms", "%.1f"), ("topk ms", "%.1f"),
]

def figures(r):
    """Returns a run's table columns from its raw measurements."""
    (window, cpu, samples, scrapes, series, steady_kb, peak_kb, disk, total,
     p50, p99, q_rate, q_hist, q_topk) = map(num, r[4:])
    return [div(samples, window), div(cpu, samples, 1e6), div(steady_kb, series, 1024),
            div(peak_kb, series, 1024), div(disk, total), ms(p50), ms(p99), q_rate, q_hist, q_topk]

def fmt(f, v):
    return f % v if v is not None else "-"

def row(cells):
    print("| " + " | ".join(cells) + " |")

def header(first):
    row(first + [c for c, _ in COLUMNS])
    row(["---"] * (len(first) + len(COLUMNS)))

def medians(size, system):
    """Each column's values over the system's good runs at a size."""
    good = [figures(r) for r in runs if r[0] == size and r[1] == system and r[3] == "ok"]
    return [[f[i] for f in good if f[i] is not None] for i in range(len(COLUMNS))]

def median(vs):
    return statistics.median(vs) if vs else None

summary = {}
for size, targets, exposed in sizes:
    print(f"\n## {int(size):,} series: {targets} targets exposing {exposed} series\n")
    header(["system", "run", "active series", "scrapes", "status"])
    for r in runs:
        if r[0] == size:
            row([r[1], r[2], fmt("%.0f", num(r[8])), fmt("%.0f", num(r[7])), r[3]]
                + [fmt(f, v) for (_, f), v in zip(COLUMNS, figures(r))])
    print(f"\nMedian over the repeats (min-max):\n")
    header(["system"])
    for system in systems:
        cols = medians(size, system)
        summary[(size, system)] = [median(vs) for vs in cols]
        row([system] + [fmt(f, median(vs)) + (f" ({fmt(f, min(vs))}-{fmt(f, max(vs))})" if len(vs) > 1 else "")
                        for (_, f), vs in zip(COLUMNS, cols)])
    print(f"\nRatios of the medians (below 1: less than the other; for samples/s, fewer):\n")
    header(["ratio"])
    for a, b in [("scrapegrid-1", "prometheus"), ("scrapegrid-1", "victoriametrics"), ("scrapegrid-2", "scrapegrid-1")]:
        if (size, a) in summary and (size, b) in summary:
            row([f"{a} / {b}"] + [fmt("%.2f", div(x, y)) for x, y in zip(summary[(size, a)], summary[(size, b)])])
    if (size, "scrapegrid-1") in summary and (size, "scrapegrid-2") in summary:
        one, two = summary[(size, "scrapegrid-1")][1], summary[(size, "scrapegrid-2")][1]
        # samples per CPU-second of scrapegrid-2 over that of scrapegrid-1
        print(f"\nScale-out efficiency (samples per CPU-second, scrapegrid-2 / scrapegrid-1): {fmt('%.2f', div(one, two))}")

if len(sizes) > 1:
    first, last = sizes[0][0], sizes[-1][0]
    print(f"\n## CPU per sample at {int(last):,} vs {int(first):,} series (1: flat)\n")
    row(["system", f"CPU-s per M samples at {int(first):,}", f"at {int(last):,}", "ratio"])
    row(["---"] * 4)
    for system in systems:
        a, b = summary.get((first, system), [None] * 2)[1], summary.get((last, system), [None] * 2)[1]
        row([system, fmt("%.3f", a), fmt("%.3f", b), fmt("%.2f", div(b, a))])
PY

vm_version=$(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo unknown)
echo "cluster vs peers: Prometheus $(prometheus --version 2>&1 | awk 'NR == 1 {print $3}'), VictoriaMetrics $vm_version," \
  "scrapegrid ($profile build), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "scrape_interval $INTERVAL, $WARMUP s warm-up, $WINDOW s window, $REPEATS repeats, churn: $(
  (( CHURN_EVERY > 0 )) && echo "$CHURN_SHARE of the pods every $CHURN_EVERY intervals" || echo off)"
: >"$work/runs.tsv"
: >"$work/sizes.tsv"
churn=()
if (( CHURN_EVERY > 0 )); then churn=(--churn-every "$CHURN_EVERY" --churn-share "$CHURN_SHARE"); fi
for size in $SIZES; do
  targets=$(( size / SERIES_PER_TARGET ))
  if (( targets < 1 )); then echo "size $size is below SERIES_PER_TARGET ($SERIES_PER_TARGET)" >&2; exit 1; fi
  s=$work/$size
  mkdir -p "$s"
  "$bin/examples/target_sim" --targets "$targets" --series "$size" --interval "$INTERVAL" "${churn[@]}" \
    >"$s/sim.out" 2>"$s/sim.err" & sim_pid=$!
  for _ in $(seq 1 600); do grep -qx ready "$s/sim.out" && break; alive "$sim_pid" || break; sleep 0.1; done
  if ! grep -qx ready "$s/sim.out"; then echo "the target simulator did not get ready:" >&2; cat "$s/sim.err" >&2; exit 1; fi
  yml=$s/prometheus.yml
  {
    printf 'global:\n  scrape_interval: %s\n  scrape_timeout: %s\n' "$INTERVAL" "$INTERVAL"
    printf 'scrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets:\n'
    sed -n 's/^listening http /          - /p' "$s/sim.out"
  } >"$yml"
  exposed=$(sed -n 's/^series //p' "$s/sim.err")
  echo "$size $targets ${exposed:-?}" >>"$work/sizes.tsv"
  for rep in $(seq 1 "$REPEATS"); do
    for name in $SYSTEMS; do run_one "$size" "$name" "$rep"; done
  done
  stop_pid "$sim_pid"; sim_pid=""
done

python3 "$work/report.py" "$work" "$SYSTEMS"
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if cut -f4 "$work/runs.tsv" | grep -qvx ok; then
  echo "some runs failed (status column): their figures are left out of the medians" >&2
  exit 1
fi
