#!/usr/bin/env bash
# A/B issuance run: two tessera binaries (e.g. the last landed release and this tree) serve the
# same scenario in turn, plain HTTP/1.1, server on CPU 0 and the load driver on CPU 1, runs
# alternating so drift affects both alike. Prints every run and the median and spread.
# Usage: bench/run-ab.sh OLD_TESSERA NEW_TESSERA LOAD [REPS] [SECONDS] [ALG] [CONCURRENCY]
set -euo pipefail
OLD=$1; NEW=$2; LOAD=$3; REPS=${4:-5}; SECS=${5:-10}; ALG=${6:-ES256}; CONC=${7:-64}
RESULTS=$(mktemp)
run_one() { # label binary port
  local label=$1 bin=$2 port=$3 d; d=$(mktemp -d)
  RUST_LOG=warn taskset -c 0 "$bin" serve --data-dir "$d" --http --listen 127.0.0.1:$port --signing-alg "$ALG" > "$d/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening" "$d/serve.log" && break; sleep 0.1; done
  "$bin" scope add --data-dir "$d" api --resource api1 >/dev/null
  local extra=()
  if "$bin" client add --help | grep -q -- --issuance-rate; then
    # Every limit on; the benchmark client's own rate is one no run reaches.
    extra=(--issuance-rate 1000000000 --issuance-burst 1000000000)
  fi
  local secret; secret=$("$bin" client add --data-dir "$d" bench --scope api "${extra[@]}" | sed -n 's/^client_secret: //p')
  sleep 1.2 # the registry poll
  local out; out=$(taskset -c 1 "$LOAD" --url http://127.0.0.1:$port/connect/token --basic "bench:$secret" \
    --body "grant_type=client_credentials&scope=api" --concurrency "$CONC" --seconds "$SECS")
  echo "$label $out" | tee -a "$RESULTS"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$d"
}
for r in $(seq "$REPS"); do
  run_one old "$OLD" 18501
  run_one new "$NEW" 18502
done
python3 "$(dirname "$0")/summarize.py" "$RESULTS"
