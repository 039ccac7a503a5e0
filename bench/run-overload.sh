#!/usr/bin/env bash
# Overload run: the real server (release, plain HTTP/1.1, default limits) pinned to CPU 0; the
# load driver on CPU 1 first measures capacity (closed loop, c=64), then offers twice that,
# open loop, from ten loopback source addresses (enough for the per-address connection cap). Prints the answers by status and p50/p99 of
# the served requests. Usage: bench/run-overload.sh [SECONDS] [ALG...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}; shift || true
ALGS=${*:-"ES256 RS256"}
cargo build --release -q -p tessera -p tessera-bench --bin tessera --bin load
# The driver holds thousands of sockets: lift its open-files limit (the server lifts its own).
ulimit -n "$(ulimit -Hn)"
BIN=${CARGO_TARGET_DIR:-target}/release/tessera; LOAD=${CARGO_TARGET_DIR:-target}/release/load
D=$(mktemp -d); trap 'kill $PID 2>/dev/null || true; rm -rf "$D"' EXIT
RUST_LOG=warn taskset -c 0 $BIN serve --data-dir "$D" --http --listen 127.0.0.1:18480 \
  --signing-alg ES256 --signing-alg RS256 > "$D/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "listening" "$D/serve.log" && break; sleep 0.2; done
$BIN scope add --data-dir "$D" api --resource api1 >/dev/null
URL=http://127.0.0.1:18480/connect/token
for alg in $ALGS; do
  SECRET=$($BIN client add --data-dir "$D" "bench-$alg" --issuance-rate 1000000000 --issuance-burst 1000000000 \
    --scope api --signing-alg "$alg" | sed -n 's/^client_secret: //p')
  sleep 1.5 # the registry poll
  CAP=$(taskset -c 1 $LOAD --url $URL --basic "bench-$alg:$SECRET" --body "grant_type=client_credentials" \
    --concurrency 64 --seconds "$SECONDS_PER_RUN")
  echo "$alg capacity $CAP"
  RPS=$(echo "$CAP" | sed 's/.*"rps":\([0-9.]*\).*/\1/')
  RATE=$(python3 -c "print(int(2 * float('$RPS')))")
  taskset -c 1 $LOAD --url $URL --basic "bench-$alg:$SECRET" --body "grant_type=client_credentials" \
    --rate "$RATE" --sources 10 --max-in-flight 4000 --seconds "$SECONDS_PER_RUN" | sed "s/^/$alg overload-2x /"
done
