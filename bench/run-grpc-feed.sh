#!/usr/bin/env bash
# The guard's cost with the revocation feed (issue 12): the same Greeter guarded in JWT mode,
# once without the feed and once following it with N revoked token ids in its set (recorded
# for its audience before it starts). Greeter pinned to CPU 0, load to CPU 1, plain HTTP/2 on
# loopback, runs alternating. Usage: bench/run-grpc-feed.sh TESSERA GRPC_BENCH SEED_REVOCATIONS [N] [REPS] [SECONDS] [C]
set -euo pipefail
BIN=$1; G=$2; SEED=$3; N=${4:-100000}; REPS=${5:-5}; S=${6:-10}; C=${7:-64}
D=$(mktemp -d); PIDS=(); trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$D"' EXIT
"$BIN" init --data-dir "$D" >/dev/null
"$BIN" scope add --data-dir "$D" dataEventRecords --resource api1 >/dev/null
SECRET=$("$BIN" client add --data-dir "$D" CC --issuance-rate 1000000000 --issuance-burst 1000000000 --scope dataEventRecords | sed -n 's/^client_secret: //p')
FEED=$("$BIN" client add --data-dir "$D" api1 --permission events | sed -n 's/^client_secret: //p')
"$SEED" --data-dir "$D" --audience api1 --n "$N"
RUST_LOG=warn "$BIN" serve --data-dir "$D" --listen 127.0.0.1:18445 --issuer https://localhost:18445 > "$D/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$D/serve.log" && break; sleep 0.2; done
CA="$D/tls/dev-ca.pem"
TOKEN=$(curl -s --cacert "$CA" -u "CC:$SECRET" -d grant_type=client_credentials https://localhost:18445/connect/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
taskset -c 0 "$G" serve --listen 127.0.0.1:17011 --authority https://localhost:18445 --ca "$CA" & PIDS+=($!)
taskset -c 0 "$G" serve --listen 127.0.0.1:17012 --authority https://localhost:18445 --ca "$CA" --feed "api1:$FEED" --feed-expect "$N" 2> "$D/feed.log" & PIDS+=($!)
for _ in $(seq 600); do grep -q "caught up" "$D/feed.log" && break; sleep 0.2; done
cut -c1-300 "$D/feed.log"
RESULTS=$(mktemp)
for r in $(seq "$REPS"); do
  echo "no_feed $(taskset -c 1 "$G" load --url http://127.0.0.1:17011 --token "$TOKEN" --concurrency "$C" --seconds "$S")" | tee -a "$RESULTS"
  echo "feed_${N}_revoked $(taskset -c 1 "$G" load --url http://127.0.0.1:17012 --token "$TOKEN" --concurrency "$C" --seconds "$S")" | tee -a "$RESULTS"
done
python3 "$(dirname "$0")/summarize.py" "$RESULTS"
