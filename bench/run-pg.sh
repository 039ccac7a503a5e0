#!/usr/bin/env bash
# Issuance and introspection with PostgreSQL: one instance, then two instances sharing the
# database (load split evenly between them), next to the same scenarios on SQLite.
# Starts a throwaway PostgreSQL (initdb/pg_ctl, as the postgres user). Everything shares the
# machine's two cores, so read the figures as relative. Usage: bench/run-pg.sh [SECONDS] [C]
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-10}; C=${2:-64}
cargo build --release -q -p tessera -p tessera-bench --bin tessera --bin load
BIN=$PWD/target/release/tessera; LOAD=$PWD/target/release/load
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
W=$(mktemp -d); chown postgres "$W"; PIDS=()
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg" stop -m immediate >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg" -o "-p $PGPORT -k $W -c listen_addresses=127.0.0.1" -l "$W/pg.log" -w start >/dev/null
runuser -u postgres -- "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres tessera
DB="postgres://postgres@127.0.0.1:$PGPORT/tessera"

setup() { # "$@" = store options; sets the secrets
  $BIN init "$@" >/dev/null
  $BIN scope add api --resource api1 "$@" >/dev/null
  JWT=$($BIN client add jwt --issuance-rate 1000000000 --issuance-burst 1000000000 --max-live-tokens off --scope api "$@" | sed -n 's/^client_secret: //p')
  REF=$($BIN client add ref --issuance-rate 1000000000 --issuance-burst 1000000000 --max-live-tokens off --scope api --token-format reference "$@" | sed -n 's/^client_secret: //p')
  API=$($BIN client add api1 --permission introspection "$@" | sed -n 's/^client_secret: //p')
}
start() { # $1 port, rest = store options
  local port=$1; shift
  RUST_LOG=warn $BIN serve "$@" --listen 127.0.0.1:$port --issuer https://localhost:18500 > "$W/serve-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q listening "$W/serve-$port.log" && break; sleep 0.2; done
}
run() { # $1 label, $2.. ports
  local label=$1; shift; local n=$#; local c=$((C / n)); local body url auth
  for scenario in jwt ref introspect; do
    local tok=""
    if [ $scenario = introspect ]; then
      tok=$(curl -s --cacert "$CA" -u "ref:$REF" -d grant_type=client_credentials https://localhost:$1/connect/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    fi
    local outs=() lp=()
    for port in "$@"; do
      case $scenario in
        jwt) url=https://localhost:$port/connect/token; auth="jwt:$JWT"; body="grant_type=client_credentials";;
        ref) url=https://localhost:$port/connect/token; auth="ref:$REF"; body="grant_type=client_credentials";;
        introspect) url=https://localhost:$port/connect/introspect; auth="api1:$API"; body="token=$tok";;
      esac
      $LOAD --url $url --ca "$CA" --basic "$auth" --body "$body" --concurrency $c --seconds $S > "$W/out-$port" &
      lp+=($!); outs+=("$W/out-$port")
    done
    wait "${lp[@]}"
    local total=0
    for o in "${outs[@]}"; do total=$((total + $(sed 's/.*"rps":\([0-9]*\).*/\1/' "$o"))); done
    echo "| $label | $scenario | $total |"
  done
}
echo "| setup | scenario | requests/s (sum) |"
echo "|---|---|---|"
# SQLite, one instance.
D1="$W/sqlite"; setup --data-dir "$D1"; start 18500 --data-dir "$D1"; CA="$D1/tls/dev-ca.pem"
run "SQLite, 1 instance" 18500
kill "${PIDS[@]}"; PIDS=()
# PostgreSQL, one then two instances (one data dir: one dev certificate, one key-encryption key).
D2="$W/pg-data"; setup --data-dir "$D2" --database-url "$DB"; start 18500 --data-dir "$D2" --database-url "$DB"; CA="$D2/tls/dev-ca.pem"
run "PostgreSQL, 1 instance" 18500
start 18501 --data-dir "$D2" --database-url "$DB"
run "PostgreSQL, 2 instances" 18500 18501
