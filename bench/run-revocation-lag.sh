#!/usr/bin/env bash
# Revocation-to-refusal lag (issue 12) in the seed scenario: the server, the REST API and the
# Greeter as separate processes following the revocation feed; N tokens each accepted by an
# API, revoked at the server, then sent again until refused.
# Usage: bench/run-revocation-lag.sh TESSERA REVOCATION_LAG [N]
set -euo pipefail
BIN=$1; LAG=$2; N=${3:-200}
PORT=18520; D=$(mktemp -d)
SEED=$(cd "$(dirname "$0")/.." && pwd)/examples/seed.toml
RUST_LOG=warn "$BIN" serve --config "$SEED" --data-dir "$D" --listen 127.0.0.1:$PORT --issuer https://localhost:$PORT > "$D/serve.log" 2>&1 &
PIDS=($!)
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do grep -q "listening" "$D/serve.log" && break; sleep 0.1; done
ISSUER=https://localhost:$PORT; CA=$D/tls/dev-ca.pem
# The seed's clients are limited to 10 tokens/s each; the run takes two per round.
"$BIN" client update --data-dir "$D" background-service --issuance-rate off >/dev/null
"$BIN" client update --data-dir "$D" CC --issuance-rate off >/dev/null
RUST_LOG=warn "$BIN" demo api --authority "$ISSUER" --ca "$CA" --listen 127.0.0.1:18521 > "$D/api.log" 2>&1 &
PIDS+=($!)
RUST_LOG=warn "$BIN" demo greeter --authority "$ISSUER" --ca "$CA" --listen 127.0.0.1:18522 > "$D/greeter.log" 2>&1 &
PIDS+=($!)
sleep 2
"$LAG" --issuer "$ISSUER" --ca "$CA" --n "$N" \
  --rest https://localhost:18521/weatherforecast --rest-client background-service:service-secret-here --rest-scope api1 \
  --greeter https://localhost:18522 --greeter-client CC:cc_secret --greeter-scope dataEventRecords
