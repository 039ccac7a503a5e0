#!/usr/bin/env bash
# Issuance over TLS by client-authentication method, same server, same run:
# client_secret_basic and self_signed_tls_client_auth (mutual TLS, RFC 8705: the certificate is
# presented once per kept-alive connection, its thumbprint compared per request, the token
# bound to it), ES256 JWT access tokens, HTTP/1.1 keep-alive over TLS, server on CPU 0 and the
# driver on CPU 1, runs alternating. Prints every run and the median and spread per method.
# Usage: bench/run-mtls.sh TESSERA LOAD [REPS] [SECONDS] [CONCURRENCY]
set -euo pipefail
BIN=$1; LOAD=$2; REPS=${3:-5}; SECS=${4:-10}; CONC=${5:-64}
PORT=18504; D=$(mktemp -d); RESULTS=$(mktemp)
RUST_LOG=warn taskset -c 0 "$BIN" serve --data-dir "$D" --listen 127.0.0.1:$PORT > "$D/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do grep -q "listening" "$D/serve.log" && break; sleep 0.1; done
"$BIN" scope add --data-dir "$D" api --resource api1 >/dev/null
UNLIMITED=(--issuance-rate 1000000000 --issuance-burst 1000000000)
SECRET=$("$BIN" client add --data-dir "$D" bench --scope api "${UNLIMITED[@]}" | sed -n 's/^client_secret: //p')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-mtls \
  -keyout "$D/client-key.pem" -out "$D/client-cert.pem" 2>/dev/null
cat "$D/client-cert.pem" "$D/client-key.pem" > "$D/client-identity.pem"
"$BIN" client add --data-dir "$D" bench-mtls --scope api --tls-client-cert "$D/client-cert.pem" "${UNLIMITED[@]}" >/dev/null
sleep 1.2 # the registry poll
CA=$D/tls/dev-ca.pem; URL=https://localhost:$PORT/connect/token; BODY="grant_type=client_credentials&scope=api"
for r in $(seq "$REPS"); do
  echo "client_secret_basic $(taskset -c 1 "$LOAD" --url "$URL" --ca "$CA" --basic "bench:$SECRET" --body "$BODY" --concurrency "$CONC" --seconds "$SECS")" | tee -a "$RESULTS"
  echo "self_signed_tls_client_auth $(taskset -c 1 "$LOAD" --url "$URL" --ca "$CA" --identity "$D/client-identity.pem" --body "$BODY&client_id=bench-mtls" --concurrency "$CONC" --seconds "$SECS")" | tee -a "$RESULTS"
done
python3 "$(dirname "$0")/summarize.py" "$RESULTS"
