#!/usr/bin/env bash
# Load run against the real server: release build, TLS (dev certificate), HTTP/1.1
# keep-alive (as the oidc-provider peer figures in shared/bench were taken), server pinned to
# CPU 0 and the load driver to CPU 1. Usage: bench/run-load.sh [SECONDS] [CONCURRENCY...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}; shift || true
CONCURRENCY=${*:-"16 64"}
cargo build --release -q -p tessera -p tessera-bench --bin tessera --bin load
BIN=target/release/tessera; LOAD=target/release/load
D=$(mktemp -d); trap 'kill $PID 2>/dev/null || true; rm -rf "$D"' EXIT
$BIN init --data-dir "$D" >/dev/null
$BIN scope add --data-dir "$D" api --resource api1 >/dev/null
declare -A SECRET
for alg in ES256 RS256 PS256 EdDSA; do
  SECRET[$alg]=$($BIN client add --data-dir "$D" "bench-$alg" --issuance-rate 1000000000 --issuance-burst 1000000000 --max-live-tokens off --scope api --signing-alg $alg | sed -n 's/^client_secret: //p')
done
$BIN client add --data-dir "$D" bench-imported --issuance-rate 1000000000 --issuance-burst 1000000000 --scope api --secret bench-imported-secret >/dev/null
REF_SECRET=$($BIN client add --data-dir "$D" bench-reference --issuance-rate 1000000000 --issuance-burst 1000000000 --max-live-tokens off --scope api --token-format reference | sed -n 's/^client_secret: //p')
API_SECRET=$($BIN client add --data-dir "$D" api1 --permission introspection | sed -n 's/^client_secret: //p')
RUST_LOG=warn taskset -c 0 $BIN serve --data-dir "$D" --listen 127.0.0.1:18443 --signing-alg ES256 --signing-alg RS256 \
  --signing-alg PS256 --signing-alg EdDSA > "$D/serve.log" 2>&1 &
PID=$!
for _ in $(seq 50); do grep -q "listening" "$D/serve.log" && break; sleep 0.2; done
URL=https://127.0.0.1:18443/connect/token; CA="$D/tls/dev-ca.pem"
token() { curl -s --cacert "$CA" -u "$1" -d grant_type=client_credentials $URL | sed 's/.*"access_token":"\([^"]*\)".*/\1/'; }
REF_TOKEN=$(token "bench-reference:$REF_SECRET"); JWT_TOKEN=$(token "bench-ES256:${SECRET[ES256]}")
for c in $CONCURRENCY; do
  for alg in ES256 RS256 PS256 EdDSA; do
    taskset -c 1 $LOAD --url $URL --ca "$CA" --basic "bench-$alg:${SECRET[$alg]}" \
      --body "grant_type=client_credentials&scope=api" --concurrency $c --seconds $SECONDS_PER_RUN | sed "s/^/$alg /"
  done
  taskset -c 1 $LOAD --url $URL --ca "$CA" --basic "bench-imported:bench-imported-secret" \
    --body "grant_type=client_credentials&scope=api" --concurrency $c --seconds $SECONDS_PER_RUN | sed "s/^/ES256-argon2id-cached /"
  taskset -c 1 $LOAD --url $URL --ca "$CA" --basic "bench-reference:$REF_SECRET" \
    --body "grant_type=client_credentials&scope=api" --concurrency $c --seconds $SECONDS_PER_RUN | sed "s/^/reference-issuance /"
  taskset -c 1 $LOAD --url https://127.0.0.1:18443/connect/introspect --ca "$CA" --basic "api1:$API_SECRET" \
    --body "token=$REF_TOKEN" --concurrency $c --seconds $SECONDS_PER_RUN | sed "s/^/introspect-reference /"
  taskset -c 1 $LOAD --url https://127.0.0.1:18443/connect/introspect --ca "$CA" --basic "api1:$API_SECRET" \
    --body "token=$JWT_TOKEN" --concurrency $c --seconds $SECONDS_PER_RUN | sed "s/^/introspect-jwt /"
  taskset -c 1 $LOAD --url https://127.0.0.1:18443/.well-known/jwks --get --ca "$CA" --concurrency $c \
    --seconds $SECONDS_PER_RUN | sed "s/^/jwks /"
done
