#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (the three exposition parsers, the
# ingest stream, both ends of the control session, remote write and remote
# read bodies) for a fixed time each, on stable Rust (`-s none`), keeping
# the corpus in fuzz/corpus/<target>. A crash fails the run and leaves its
# input in fuzz/artifacts/<target>.
#
#   scripts/fuzz.sh --smoke     20 s per target (CI)
#   scripts/fuzz.sh [SECONDS]   SECONDS per target (300 by default)
#   scripts/fuzz.sh SECONDS TARGET...   only these targets
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=300
if [ "${1:-}" = --smoke ]; then
  secs=20
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  secs=$1
  shift
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  listed=$(cargo fuzz list)
  read -r -a targets <<<"$(echo $listed)"
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets" >&2
  exit 1
fi
mkdir -p logs
for t in "${targets[@]}"; do
  # -a: debug assertions, so an integer overflow fails too.
  cargo fuzz build -s none -a "$t"
done
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="logs/$t.log"
  if ! cargo fuzz run -s none -a "$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t failed; the input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  echo "fuzz: $t: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1), corpus $(ls "corpus/$t" | wc -l) inputs"
done
