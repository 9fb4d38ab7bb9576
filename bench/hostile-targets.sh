#!/usr/bin/env bash
# Hostile targets (issue 17): the peak memory a scraper pays for a target
# that sends one byte per second, one series with 1,000,000 labels, a body
# that never ends, or a gzip bomb, beside Prometheus 2.42 (Debian's) on the
# same targets with the same limit. Targets come from
# bench/hostile_targets.py on loopback; each kind runs alone for HOLD
# seconds, then all four at once, each time on a fresh system:
#   - scrapegrid: storage node + control plane + 1 scraper (its body cap,
#     256 MiB, is the only limit: no body_size_limit in the config);
#   - prometheus: the same prometheus.yml with `body_size_limit: 256MB` in
#     every job (Prometheus has no cap of its own: without it, it buffers
#     whatever the target sends until the scrape times out).
# Prints a markdown table on stdout (progress on stderr): per run, the
# scraping process's peak RSS (VmHWM, MB) and each target's health and last
# error as the system reports them (`/api/v1/targets`). It asserts nothing
# about the figures; it exits 1 when a system did not start or died.
#
#   bench/hostile-targets.sh            # HOLD=40 s per run, 15 s interval, 10 s timeout, release build
#   bench/hostile-targets.sh --smoke    # seconds per run, debug build, a 300 MiB bomb
#   KINDS="endless bomb" SYSTEMS=scrapegrid bench/hostile-targets.sh
#   BIN=/other/checkout/target/release bench/hostile-targets.sh   # binaries built elsewhere (before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
if [[ "${1:-}" == "--smoke" ]]; then
  smoke=1
  HOLD=${HOLD:-6} INTERVAL=${INTERVAL:-2s} TIMEOUT=${TIMEOUT:-1s} BOMB_MIB=${BOMB_MIB:-300}
  KINDS=${KINDS:-"fine endless bomb"}
fi
bash scripts/install-deps.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh
HOLD=${HOLD:-40}
INTERVAL=${INTERVAL:-15s}
TIMEOUT=${TIMEOUT:-10s}
BOMB_MIB=${BOMB_MIB:-2048}
KINDS=${KINDS:-"fine slow labels endless bomb"}
SYSTEMS=${SYSTEMS:-"scrapegrid prometheus"}
if [[ -n ${BIN:-} ]]; then bin=$BIN; else build_binaries "$smoke"; fi

work=$(mktemp -d)
sys=()
srv=
cleanup() {
  local rc=$?
  if (( rc != 0 )); then
    echo "failed (exit $rc); the logs:" >&2
    tail -n 20 "$work"/*.log >&2 2>/dev/null || true
  fi
  stop_system
  [[ -n $srv ]] && stop_pid "$srv"
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
echo "rendering the hostile bodies (a ${BOMB_MIB} MiB bomb)..." >&2
python3 bench/hostile_targets.py "$port" "$BOMB_MIB" & srv=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/fine" >/dev/null && break
  alive "$srv" || { echo "the hostile targets did not start" >&2; exit 1; }
  sleep 0.2
done
wait_ready "http://127.0.0.1:$port/fine"

# Writes the config: one job per kind (the job is named after it).
write_config() {
  local limit=$1 kind
  shift
  {
    echo "global: {scrape_interval: $INTERVAL, scrape_timeout: $TIMEOUT}"
    echo "scrape_configs:"
    for kind in "$@"; do
      echo "  - job_name: $kind"
      echo "    metrics_path: /$kind"
      [[ -n $limit ]] && echo "    body_size_limit: $limit"
      echo "    static_configs: [{targets: ['127.0.0.1:$port']}]"
    done
  } >"$work/prometheus.yml"
}

# Prints "job: health (last error); ..." for the targets of a targets API
# answer, by job; "unknown" for one not scraped yet.
health() {
  curl -sf "$1/api/v1/targets" | python3 -c '
import json, sys
out = []
for t in sorted(json.load(sys.stdin)["data"]["activeTargets"], key=lambda t: t["scrapePool"]):
    err = (t.get("lastError") or "").replace("|", "/")
    out.append("%s: %s%s" % (t["scrapePool"], t["health"], " (%s)" % err if err else ""))
print("; ".join(out))
'
}

# Runs one system on the kinds given; prints a table row.
run() {
  local system=$1 kinds=$2 watched targets
  rm -rf "$work/data"
  mkdir -p "$work/data"
  case $system in
    scrapegrid)
      write_config "" $kinds
      local sg sh cg ch sch
      sg=$(free_port) sh=$(free_port) cg=$(free_port) ch=$(free_port) sch=$(free_port)
      $bin/storage-node --data-dir "$work/data/storage" --grpc-addr 127.0.0.1:$sg --http-addr 127.0.0.1:$sh \
        >"$work/storage.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$sh/-/ready"
      $bin/control-plane --config "$work/prometheus.yml" --grpc-addr 127.0.0.1:$cg --http-addr 127.0.0.1:$ch \
        --storage "http://127.0.0.1:$sg" >"$work/control.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$ch/-/ready"
      $bin/scraper-node --control-plane "http://127.0.0.1:$cg" --http-addr 127.0.0.1:$sch --id bench \
        --outbox.dir "$work/data" >"$work/scraper.log" 2>&1 & sys+=($!)
      watched=${sys[2]} targets="http://127.0.0.1:$ch"
      ;;
    prometheus)
      write_config 256MB $kinds
      local pp
      pp=$(free_port)
      prometheus --config.file "$work/prometheus.yml" --storage.tsdb.path "$work/data/prom" \
        --web.listen-address 127.0.0.1:$pp >"$work/prometheus.log" 2>&1 & sys+=($!)
      wait_ready "http://127.0.0.1:$pp/-/ready"
      watched=${sys[0]} targets="http://127.0.0.1:$pp"
      ;;
  esac
  sleep "$HOLD"
  # Every target scraped at least once (a row of "unknown" would measure
  # nothing), for at most a minute more.
  local peak now_kb status
  for _ in $(seq 1 60); do
    status=$(health "$targets" || true)
    [[ -n $status && $status != *unknown* ]] && break
    alive "$watched" || break
    sleep 1
  done
  if [[ -z $status || $status == *unknown* ]]; then
    echo "$system did not scrape every target of: $kinds ($status)" >&2
    exit 1
  fi
  peak=$(hwm_kb "$watched") now_kb=$(rss_kb "$watched")
  if ! alive "$watched"; then
    echo "$system died running $kinds; its logs:" >&2
    tail -20 "$work"/*.log >&2
    exit 1
  fi
  status=$(health "$targets")
  stop_system
  echo "| $system | $kinds | $(calc %.0f "$peak / 1024") | $(calc %.0f "$now_kb / 1024") | $status |"
}

echo "| system | targets | peak RSS MB | RSS at the end MB | health (last error) |"
echo "|---|---|---|---|---|"
for system in $SYSTEMS; do
  for kind in $KINDS; do
    echo "$system: $kind for ${HOLD}s" >&2
    run "$system" "$kind"
  done
  if [[ $KINDS != *" "* ]]; then continue; fi
  all=$(for k in $KINDS; do [[ $k == fine ]] || printf '%s ' "$k"; done)
  all=${all% }
  echo "$system: $all together for ${HOLD}s" >&2
  run "$system" "$all"
done
