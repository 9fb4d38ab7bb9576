#!/usr/bin/env bash
# Side-by-side scrape cost: Prometheus (Debian's 2.42) and a scrapegrid
# cluster (storage node, control plane, one scraper node) scraping the same
# targets with the same prometheus.yml, at the same time, in one run. Prints a
# table per format; asserts nothing (a benchmark measures, tests check).
#
#   bench/scrape-vs-prometheus.sh        # 50 targets at 1s, 15s warm-up, 60s window, text then OpenMetrics
#   TARGETS=20 WARMUP=10 WINDOW=30 FORMATS=text bench/scrape-vs-prometheus.sh
#
# The targets: the 2,000-sample body of `cargo bench -p scraper-node --bench
# parse` (node_exporter/client_golang shaped), served uncompressed with the
# format's Content-Type by one python3 process on TARGETS loopback ports.
# FORMATS lists the rounds (`text`, `openmetrics`); a format that scrapegrid's
# parser does not accept yet is reported as not available and skipped. Each
# round starts fresh servers, a Prometheus with a temporary TSDB and a fresh
# cluster; both scrape every target each second (scrape_timeout 1s).
#
# What it measures in each round, over WINDOW seconds after WARMUP seconds:
#   - CPU: user + system seconds from /proc/<pid>/stat, of Prometheus and of
#     each scrapegrid process, and their sum;
#   - scrapes and samples: the same range queries on both query APIs at the
#     window's end, `up{job="bench"}[W]` (scrapes; successful ones have 1)
#     and `scrape_samples_scraped{job="bench"}[W]` (samples); the per-scrape
#     and per-sample figures divide by each side's own counts;
#   - RSS: steady is the mean of VmRSS sampled every 5s in the window, peak is
#     VmHWM; the scrapegrid total adds up its processes (its peak is the sum
#     of each process's peak, an upper bound).
# "samples/s per CPU core" is samples scraped per CPU-second: the scrape rate
# one fully busy core would sustain at this cost.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
TARGETS=${TARGETS:-50}
WARMUP=${WARMUP:-15}
WINDOW=${WINDOW:-60}
FORMATS=${FORMATS:-text openmetrics}
cargo build --release -q --bins -p storage-node -p control-plane -p scraper-node
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
cleanup() { stop; rm -rf "$work"; }
trap cleanup EXIT

# The bodies, and the formats scrapegrid's parser accepts (DIR/available).
cargo bench -q -p scraper-node --bench parse -- --write-bodies "$work/bodies"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_ready() { for _ in $(seq 1 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
now() { date +%s.%N; }
calc() { awk "BEGIN {printf \"$1\", $2}"; }

# One HTTP server per port, all in one python3 process; prints the ports.
cat >"$work/targets.py" <<'PY'
import http.server, os, sys, threading
body = open(sys.argv[1], "rb").read()
ctype, n, portfile = sys.argv[2], int(sys.argv[3]), sys.argv[4]

class Target(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as exporters serve

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target) for _ in range(n)]
with open(portfile + ".tmp", "w") as f:
    f.write("".join(f"{s.server_address[1]}\n" for s in servers))
os.rename(portfile + ".tmp", portfile)
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
threading.Event().wait()
PY

# Prints "values sum" of a range query's matrix at a time.
range_stats() {
  curl -sf --get "$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=$3" |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; v = [float(x[1]) for s in r for x in s["values"]]; print(len(v), sum(v))'
}

run_round() {
  local format=$1 ctype r=$work/$1
  case $format in
    text) ctype='text/plain; version=0.0.4; charset=utf-8' ;;
    openmetrics) ctype='application/openmetrics-text; version=1.0.0; charset=utf-8' ;;
    *) echo "unknown format $format (text, openmetrics)" >&2; return 1 ;;
  esac
  mkdir -p "$r"
  python3 "$work/targets.py" "$work/bodies/$format" "$ctype" "$TARGETS" "$r/ports" >"$r/targets.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do [[ -s $r/ports ]] && break; sleep 0.1; done
  {
    printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets:\n'
    sed 's/.*/          - 127.0.0.1:&/' "$r/ports"
  } >"$r/prometheus.yml"

  local pport shttp sgrpc chttp cgrpc rhttp
  pport=$(free_port); shttp=$(free_port); sgrpc=$(free_port); chttp=$(free_port); cgrpc=$(free_port); rhttp=$(free_port)
  prometheus --config.file="$r/prometheus.yml" --storage.tsdb.path="$r/prom" \
    --web.listen-address="127.0.0.1:$pport" >"$r/prometheus.log" 2>&1 & local prom=$!; pids+=("$prom")
  $bin/storage-node --data-dir "$r/sg" --grpc-addr "127.0.0.1:$sgrpc" --http-addr "127.0.0.1:$shttp" \
    >"$r/storage.log" 2>&1 & local storage=$!; pids+=("$storage")
  wait_ready "http://127.0.0.1:$shttp/-/ready"
  $bin/control-plane --config "$r/prometheus.yml" --grpc-addr "127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$chttp" \
    --storage "http://127.0.0.1:$sgrpc" >"$r/control-plane.log" 2>&1 & local control=$!; pids+=("$control")
  wait_ready "http://127.0.0.1:$chttp/-/healthy"
  $bin/scraper-node --control-plane "http://127.0.0.1:$cgrpc" --http-addr "127.0.0.1:$rhttp" --id bench --outbox.dir "$r" \
    >"$r/scraper.log" 2>&1 & local scraper=$!; pids+=("$scraper")
  wait_ready "http://127.0.0.1:$rhttp/-/healthy"
  wait_ready "http://127.0.0.1:$pport/-/ready"
  sleep "$WARMUP"

  local procs=("$prom" "$scraper" "$storage" "$control") cpu0=() cpu1=() rss=() p i samples=0
  for p in "${procs[@]}"; do cpu0+=("$(cpu_s "$p")"); rss+=(0); done
  local t0 t1 end
  t0=$(now); end=$(calc '%.3f' "$t0 + $WINDOW")
  local left
  while left=$(calc '%.3f' "$end - $(now)"); [[ $left != -* && $left != 0.000 ]]; do
    sleep "$(calc '%.3f' "$left < 5 ? $left : 5")"
    for i in "${!procs[@]}"; do rss[i]=$(( rss[i] + $(rss_kb "${procs[i]}") )); done
    samples=$(( samples + 1 ))
  done
  t1=$(now)
  for p in "${procs[@]}"; do cpu1+=("$(cpu_s "$p")"); done
  local win_ms
  win_ms=$(calc '%d' "($t1 - $t0) * 1000")
  sleep 3 # let the last scrapes reach both stores

  local prom_up prom_samples sg_up sg_samples
  prom_up=$(range_stats "http://127.0.0.1:$pport" "up{job=\"bench\"}[${win_ms}ms]" "$t1")
  prom_samples=$(range_stats "http://127.0.0.1:$pport" "scrape_samples_scraped{job=\"bench\"}[${win_ms}ms]" "$t1")
  sg_up=$(range_stats "http://127.0.0.1:$shttp" "up{job=\"bench\"}[${win_ms}ms]" "$t1")
  sg_samples=$(range_stats "http://127.0.0.1:$shttp" "scrape_samples_scraped{job=\"bench\"}[${win_ms}ms]" "$t1")

  # Columns: prometheus, scraper, storage, control plane, scrapegrid total.
  local cpu=() steady=() peak=() scrapes=() n=()
  for i in "${!procs[@]}"; do
    cpu+=("$(calc '%.3f' "${cpu1[i]} - ${cpu0[i]}")")
    steady+=("$(calc '%.1f' "${rss[i]} / $samples / 1024")")
    peak+=("$(calc '%.1f' "$(hwm_kb "${procs[i]}") / 1024")")
  done
  cpu+=("$(calc '%.3f' "${cpu[1]} + ${cpu[2]} + ${cpu[3]}")")
  steady+=("$(calc '%.1f' "${steady[1]} + ${steady[2]} + ${steady[3]}")")
  peak+=("$(calc '%.1f' "${peak[1]} + ${peak[2]} + ${peak[3]}")")
  for i in 0 1 2 3 4; do
    if (( i == 0 )); then scrapes+=("${prom_up%% *}"); n+=("$(calc '%.0f' "${prom_samples#* }")")
    else scrapes+=("${sg_up%% *}"); n+=("$(calc '%.0f' "${sg_samples#* }")"); fi
  done
  stop

  local body_bytes
  body_bytes=$(wc -c <"$work/bodies/$format")
  printf '\n== %s: %s targets x %s bytes, 1s interval, %.1fs window after %ss warm-up\n' \
    "$format" "$TARGETS" "$body_bytes" "$(calc '%.3f' "$win_ms / 1000")" "$WARMUP"
  printf 'prometheus: %s scrapes (%.0f up), %s samples; scrapegrid: %s scrapes (%.0f up), %s samples\n' \
    "${prom_up%% *}" "${prom_up#* }" "${n[0]}" "${sg_up%% *}" "${sg_up#* }" "${n[1]}"
  row() { printf '%-24s %13s %13s %13s %13s %13s\n' "$@"; }
  # Prints the five columns' a[i] * scale / b[i] with a format ("-" when b is 0).
  cols() {
    local -n a=$2 b=$3; local i
    for i in 0 1 2 3 4; do awk -v a="${a[i]}" -v b="${b[i]}" -v s="$4" "BEGIN {if (b > 0) printf \"$1 \", a * s / b; else printf \"- \"}"; done
  }
  row "" "prometheus" "sg scraper" "sg storage" "sg control" "sg total"
  row "CPU seconds" "${cpu[@]}"
  # shellcheck disable=SC2046 # cols prints five words
  row "CPU ms per scrape" $(cols '%.2f' cpu scrapes 1000)
  # shellcheck disable=SC2046
  row "CPU us per sample" $(cols '%.3f' cpu n 1000000)
  # shellcheck disable=SC2046
  row "samples/s per CPU core" $(cols '%.0f' n cpu 1)
  row "RSS steady MB" "${steady[@]}"
  row "RSS peak MB" "${peak[@]}"
}

echo "scrape cost: Prometheus $(prometheus --version 2>&1 | awk 'NR == 1 {print $3}') vs scrapegrid, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for format in $FORMATS; do
  if ! grep -qx "$format" "$work/bodies/available"; then
    printf '\n== %s: not available (scrapegrid does not parse the body yet)\n' "$format"
    continue
  fi
  run_round "$format"
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
