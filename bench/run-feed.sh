#!/usr/bin/env bash
# Revocation feed throughput (issue 12): one instance over TLS records N revocations (each a
# durable row and a feed event in one transaction) while a feed reader drains them and a load
# driver keeps issuing ES256 tokens at the same time. Server on CPU 0, clients on CPU 1.
# Usage: bench/run-feed.sh TESSERA LOAD REVOCATION_RATE [N]
set -euo pipefail
BIN=$1; LOAD=$2; RATE=$3; N=${4:-5000}
PORT=18530; D=$(mktemp -d)
RUST_LOG=warn taskset -c 0 "$BIN" serve --data-dir "$D" --listen 127.0.0.1:$PORT > "$D/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do grep -q "listening" "$D/serve.log" && break; sleep 0.1; done
"$BIN" scope add --data-dir "$D" api --resource rs_bench >/dev/null
UNLIMITED=(--issuance-rate 1000000000 --issuance-burst 1000000000)
REV=$("$BIN" client add --data-dir "$D" revoker --scope api "${UNLIMITED[@]}" | sed -n 's/^client_secret: //p')
ISS=$("$BIN" client add --data-dir "$D" issuer-load --scope api "${UNLIMITED[@]}" | sed -n 's/^client_secret: //p')
READER=$("$BIN" client add --data-dir "$D" rs_bench --permission events | sed -n 's/^client_secret: //p')
sleep 1.2 # the registry poll
ISSUER=https://localhost:$PORT; CA=$D/tls/dev-ca.pem
taskset -c 1 "$LOAD" --url "$ISSUER/connect/token" --ca "$CA" --basic "issuer-load:$ISS" \
  --body "grant_type=client_credentials&scope=api" --concurrency 16 --seconds 20 > "$D/issuance.json" &
LOADPID=$!
taskset -c 1 "$RATE" --issuer "$ISSUER" --ca "$CA" --client "revoker:$REV" --scope api --reader "rs_bench:$READER" --n "$N" --concurrency 32
wait $LOADPID
echo "issuance meanwhile: $(cat "$D/issuance.json")"
