#!/usr/bin/env bash
# Issuance by client-authentication method, same server, same run: client_secret_basic,
# private_key_jwt (a fresh ES256 assertion per request, verified and its jti recorded) and
# client_secret_basic with a DPoP proof (a fresh ES256 proof per request, a DPoP-bound token), ES256
# JWT access tokens, plain HTTP/1.1 keep-alive, server on CPU 0 and the driver on CPU 1, runs
# alternating. Prints every run and the median and spread per method.
# Usage: bench/run-auth-methods.sh TESSERA LOAD [REPS] [SECONDS] [CONCURRENCY]
set -euo pipefail
BIN=$1; LOAD=$2; REPS=${3:-5}; SECS=${4:-10}; CONC=${5:-64}
PORT=18503; D=$(mktemp -d); RESULTS=$(mktemp)
RUST_LOG=warn taskset -c 0 "$BIN" serve --data-dir "$D" --http --listen 127.0.0.1:$PORT > "$D/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do grep -q "listening" "$D/serve.log" && break; sleep 0.1; done
"$BIN" scope add --data-dir "$D" api --resource api1 >/dev/null
UNLIMITED=(--issuance-rate 1000000000 --issuance-burst 1000000000)
SECRET=$("$BIN" client add --data-dir "$D" bench --scope api "${UNLIMITED[@]}" | sed -n 's/^client_secret: //p')
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/assertion-key.pem" 2>/dev/null
ISSUER=http://127.0.0.1:$PORT
"$LOAD" --assertion "$D/assertion-key.pem:bench-pk:$ISSUER" --write-jwks "$D/bench-pk.jwks"
"$BIN" client add --data-dir "$D" bench-pk --scope api --jwks "$D/bench-pk.jwks" "${UNLIMITED[@]}" >/dev/null
sleep 1.2 # the registry poll
URL=$ISSUER/connect/token; BODY="grant_type=client_credentials&scope=api"
for r in $(seq "$REPS"); do
  echo "client_secret_basic $(taskset -c 1 "$LOAD" --url "$URL" --basic "bench:$SECRET" --body "$BODY" --concurrency "$CONC" --seconds "$SECS")" | tee -a "$RESULTS"
  echo "private_key_jwt $(taskset -c 1 "$LOAD" --url "$URL" --assertion "$D/assertion-key.pem:bench-pk:$ISSUER" --body "$BODY" --concurrency "$CONC" --seconds "$SECS")" | tee -a "$RESULTS"
  echo "dpop_bound $(taskset -c 1 "$LOAD" --url "$URL" --basic "bench:$SECRET" --dpop "$D/assertion-key.pem" --body "$BODY" --concurrency "$CONC" --seconds "$SECS")" | tee -a "$RESULTS"
done
python3 "$(dirname "$0")/summarize.py" "$RESULTS"
