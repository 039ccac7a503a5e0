#!/usr/bin/env bash
# Where a server's CPU goes, thread by thread: CPU time and context switches per issued token,
# read from /proc before and after one load run (no profiler, nothing attached). This is what
# showed the token writer preempted by each arriving request at c=16 (issue 17).
# Usage: bench/thread-costs.sh TESSERA LOAD [CONCURRENCY] [SECONDS] [reference|jwt]
#   TESSERA, LOAD: release binaries (target/release/tessera, target/release/load).
# Server on CPU 0, driver on CPU 1, plain HTTP/1.1 keep-alive on loopback.
set -euo pipefail
BIN=$1; LOAD=$2; C=${3:-16}; SECS=${4:-5}; FMT=${5:-reference}
PORT=$((18600 + RANDOM % 300)); D=$(mktemp -d)
"$BIN" init --data-dir "$D" >/dev/null
"$BIN" scope add --data-dir "$D" api --resource api1 >/dev/null
U=(--issuance-rate 1000000000 --issuance-burst 1000000000 --max-live-tokens off)
SECRET=$("$BIN" client add --data-dir "$D" c --scope api --token-format "$FMT" "${U[@]}" | sed -n 's/^client_secret: //p')
RUST_LOG=warn taskset -c 0 "$BIN" serve --data-dir "$D" --http --listen 127.0.0.1:$PORT > "$D/serve.log" 2>&1 &
PID=$!; trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do grep -q listening "$D/serve.log" && break; sleep 0.1; done
# One line per thread: name|tid, CPU ticks (user+system), voluntary and involuntary switches.
snap() {
  for t in /proc/$PID/task/*; do
    printf '%s|%s %s %s %s\n' "$(tr ' ' _ < "$t/comm")" "${t##*/}" \
      "$(awk '{sub(/.*\) /, ""); print $12 + $13}' "$t/stat")" \
      "$(awk '/^voluntary_ctxt/ {print $2}' "$t/status")" "$(awk '/^nonvoluntary_ctxt/ {print $2}' "$t/status")"
  done | sort
}
snap > "$D/before"
OUT=$(taskset -c 1 "$LOAD" --spin --url http://127.0.0.1:$PORT/connect/token --basic "c:$SECRET" \
  --body 'grant_type=client_credentials&scope=api' --concurrency "$C" --seconds "$SECS")
snap > "$D/after"
N=$(sed 's/.*"ok_including_warmup":\([0-9]*\).*/\1/' <<< "$OUT")
echo "$FMT c=$C: $(sed 's/.*"rps":\([0-9.]*\).*/\1/' <<< "$OUT") tokens/s, $N tokens including the warm-up"
TICK_US=$((1000000 / $(getconf CLK_TCK)))
join "$D/before" "$D/after" | awk -v n="$N" -v tick="$TICK_US" '
  { dt = $5 - $2; dv = $6 - $3; di = $7 - $4
    if (dt > 0 || dv + di > n / 100)
      printf "%-28s CPU %7.2f us/token  voluntary %.2f  involuntary %.2f switches/token\n", $1, dt * tick / n, dv / n, di / n }'
