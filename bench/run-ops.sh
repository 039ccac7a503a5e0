#!/usr/bin/env bash
# Issue 16: what metrics and JSON logs cost on the issuance path, end to end. One tessera binary
# serves the same ES256 scenario in two configurations, alternating runs so drift affects both:
#   off: no metrics listener (nothing recorded), text logs at WARN (as the A/B runs serve);
#   on:  --metrics-listen (every counter and histogram recorded, /metrics scraped once a
#        second during the run) and --log-format json at INFO (each request in its span).
# Plain HTTP/1.1, server on CPU 0, load driver on CPU 1. Prints every run, median and spread,
# and on/off (issue 16 asks >= 0.95): by throughput, and by requests per second of server CPU
# time (utime + stime from /proc), which holds up better on a machine others are using.
# Usage: bench/run-ops.sh TESSERA LOAD [REPS] [SECONDS] [CONCURRENCY]
set -euo pipefail
BIN=$1; LOAD=$2; REPS=${3:-5}; SECS=${4:-10}; CONC=${5:-64}
RESULTS=$(mktemp); PER_CPU=$(mktemp)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_one() { # label port [serve options...]
  local label=$1 port=$2; shift 2
  local d; d=$(mktemp -d)
  local level=warn; [ "$label" = on ] && level=info
  RUST_LOG=$level taskset -c 0 "$BIN" serve --data-dir "$d" --http --listen 127.0.0.1:$port "$@" > "$d/serve.out" 2> "$d/serve.log" &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening" "$d/serve.out" && break; sleep 0.1; done
  "$BIN" scope add --data-dir "$d" api --resource api1 >/dev/null
  local secret; secret=$("$BIN" client add --data-dir "$d" bench --scope api --issuance-rate 1000000000 \
    --issuance-burst 1000000000 | sed -n 's/^client_secret: //p')
  sleep 1.2 # the registry poll
  local scraper=""
  if [ "$label" = on ]; then
    (for _ in $(seq $((SECS + 2))); do curl -s -o /dev/null "http://127.0.0.1:$((port + 1))/metrics"; sleep 1; done) &
    scraper=$!
  fi
  local before; before=$(cpu_ticks "$pid")
  local out; out=$(taskset -c 1 "$LOAD" --url http://127.0.0.1:$port/connect/token --basic "bench:$secret" \
    --body "grant_type=client_credentials&scope=api" --concurrency "$CONC" --seconds "$SECS")
  local after; after=$(cpu_ticks "$pid")
  echo "$label $out" | tee -a "$RESULTS"
  # The same line with rps replaced by answers per server CPU-second (warm-up included).
  python3 -c 'import json,os,sys; r=json.loads(sys.argv[2]); t=(int(sys.argv[4])-int(sys.argv[3]))/os.sysconf("SC_CLK_TCK"); r["rps"]=round(r["ok_including_warmup"]/t); print(sys.argv[1], json.dumps(r))' \
    "$label" "$out" "$before" "$after" >> "$PER_CPU"
  [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; }
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$d"
}
for r in $(seq "$REPS"); do
  run_one off 18601
  run_one on 18611 --metrics-listen 127.0.0.1:18612 --log-format json
done
echo "== throughput"
python3 "$(dirname "$0")/summarize.py" "$RESULTS"
echo "== answers per server CPU-second (the req/s columns below)"
python3 "$(dirname "$0")/summarize.py" "$PER_CPU"
