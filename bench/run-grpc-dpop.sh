#!/usr/bin/env bash
# Issue 14: guarded gRPC SayHello with a bearer token vs a DPoP-bound token and a fresh ES256
# proof per call (RFC 9449 §7: the guard verifies each proof and records its jti; the token
# itself is served from the guard's cache either way). Greeter pinned to CPU 0, the driver to
# CPU 1 (its proofs signed before each run), plain HTTP/2 on loopback, runs alternating.
# The difference of the per-call times is what a proof costs the API.
# Usage: bench/run-grpc-dpop.sh [REPS] [SECONDS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}; S=${2:-10}; C=${3:-64}
cargo build --release -q -p tessera -p tessera-bench --bin tessera --bin grpc_bench
BIN=${CARGO_TARGET_DIR:-target}/release/tessera; G=${CARGO_TARGET_DIR:-target}/release/grpc_bench
D=$(mktemp -d); PIDS=(); RESULTS=$(mktemp)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$D"' EXIT
$BIN init --data-dir "$D" >/dev/null
$BIN scope add --data-dir "$D" dataEventRecords --resource api1 >/dev/null
SECRET=$($BIN client add --data-dir "$D" CC --issuance-rate 1000000000 --issuance-burst 1000000000 --max-live-tokens off --scope dataEventRecords | sed -n 's/^client_secret: //p')
RUST_LOG=warn $BIN serve --data-dir "$D" --listen 127.0.0.1:18445 > "$D/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$D/serve.log" && break; sleep 0.2; done
CA="$D/tls/dev-ca.pem"; AUTH=https://127.0.0.1:18445
TOKEN=$(curl -s --cacert "$CA" -u "CC:$SECRET" -d grant_type=client_credentials "$AUTH/connect/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/dpop.pem" 2>/dev/null
taskset -c 0 $G serve --listen 127.0.0.1:17003 --authority "$AUTH" --ca "$CA" 2> "$D/greeter.log" & PIDS+=($!)
for _ in $(seq 50); do grep -q guarded "$D/greeter.log" && break; sleep 0.2; done
PROOFS=$((S * 40000))
for r in $(seq "$REPS"); do
  echo "bearer $(taskset -c 1 $G load --url http://127.0.0.1:17003 --token "$TOKEN" --concurrency "$C" --seconds "$S")" | tee -a "$RESULTS"
  echo "dpop $(taskset -c 1 $G load --url http://127.0.0.1:17003 --dpop "$D/dpop.pem" --authority "$AUTH" --ca "$CA" \
    --client "CC:$SECRET" --proofs "$PROOFS" --concurrency "$C" --seconds "$S")" | tee -a "$RESULTS"
done
python3 bench/summarize.py "$RESULTS"
