# Helpers the bench scripts share (sourced, not run): ports, readiness,
# process figures from /proc, arithmetic, stopping processes, and one
# instant query's value. A script sets `sys` (its running system's PIDs in
# start order) before it calls stop_system.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_ready() { for _ in $(seq 1 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }
# /proc readers print 0 once the process is gone or a zombie (a run notices
# with alive).
rss_kb() { awk '/VmRSS/ {v = $2} END {print v + 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/VmHWM/ {v = $2} END {print v + 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Whether a process runs (a child that exited stays a zombie until waited for).
alive() { local s; s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1; [[ -n $s && ${s%% *} != Z ]]; }
now() { date +%s.%N; }
calc() { awk "BEGIN {printf \"$1\", $2}"; }

# Stops one process: SIGTERM, SIGKILL after 60 s, then reaps it.
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 600); do alive "$1" || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# Stops the running system in reverse start order, each waited for: the
# scrapers drain first, while the control plane and storage node still take
# their handovers and batches.
stop_system() {
  local i
  for ((i = ${#sys[@]} - 1; i >= 0; i--)); do stop_pid "${sys[i]}"; done
  sys=()
}

# Prints the value of an instant query's first series at a time; "nan" when
# the query fails or the answer is empty.
query_value() {
  local out
  out=$(curl -sf --max-time 120 --get "$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=$3") || { echo nan; return 0; }
  python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "nan")' \
    <<<"$out" 2>/dev/null || echo nan
}

# Builds the three binaries and the target simulator (debug for a smoke run,
# release otherwise) and sets profile and bin (where they are).
build_binaries() {
  local flag=--release
  profile=release
  if (( $1 )); then profile=debug flag=; fi
  cargo build $flag -q --bins -p storage-node -p control-plane -p scraper-node
  cargo build $flag -q --example target_sim -p scrapegrid-tests
  bin=${CARGO_TARGET_DIR:-target}/$profile
}
