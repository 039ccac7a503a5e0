#!/usr/bin/env bash
# Guarded vs unguarded gRPC SayHello: the same Greeter, once behind the guard (JWT mode, the
# token validated on first use and then served from the guard's cache), once bare. Greeter
# pinned to CPU 0, load to CPU 1, plain HTTP/2 on loopback. Usage: bench/run-grpc.sh [SECONDS] [C]
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-10}; C=${2:-64}
cargo build --release -q -p tessera -p tessera-bench --bin tessera --bin grpc_bench
BIN=target/release/tessera; G=target/release/grpc_bench
D=$(mktemp -d); PIDS=(); trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$D"' EXIT
$BIN init --data-dir "$D" >/dev/null
$BIN scope add --data-dir "$D" dataEventRecords --resource api1 >/dev/null
SECRET=$($BIN client add --data-dir "$D" CC --issuance-rate 1000000000 --issuance-burst 1000000000 --max-live-tokens off --scope dataEventRecords | sed -n 's/^client_secret: //p')
RUST_LOG=warn $BIN serve --data-dir "$D" --listen 127.0.0.1:18444 > "$D/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$D/serve.log" && break; sleep 0.2; done
CA="$D/tls/dev-ca.pem"
TOKEN=$(curl -s --cacert "$CA" -u "CC:$SECRET" -d grant_type=client_credentials https://127.0.0.1:18444/connect/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
taskset -c 0 $G serve --listen 127.0.0.1:17001 & PIDS+=($!)
taskset -c 0 $G serve --listen 127.0.0.1:17002 --authority https://127.0.0.1:18444 --ca "$CA" & PIDS+=($!)
sleep 1
echo "unguarded, no token sent  $(taskset -c 1 $G load --url http://127.0.0.1:17001 --concurrency $C --seconds $S)"
echo "unguarded, same token sent $(taskset -c 1 $G load --url http://127.0.0.1:17001 --token "$TOKEN" --concurrency $C --seconds $S)"
echo "guarded   $(taskset -c 1 $G load --url http://127.0.0.1:17002 --token "$TOKEN" --concurrency $C --seconds $S)"
