#!/usr/bin/env bash
# Reproduces the load numbers of docs/benchmarks.md on this machine:
#   1. SQLite, one `ivrpay serve`: the peak of durable IVR charges per second
#      (closed loop at 16, 32 and 64 callers), then an open loop at half the
#      peak for the latency percentiles;
#   2. PostgreSQL, two `ivrpay serve` processes on one fresh schema, the
#      loadtest alternating between them: the same two measurements.
# The servers' VmRSS is sampled once a second throughout; the peak is printed.
# Every server listens on 127.0.0.1 and uses a throw-away database.
#
# Usage: scripts/loadbench.sh            (DURATION=20s by default; needs jq and psql)
#        IVRPAY_TEST_POSTGRES=postgres://…  selects the PostgreSQL server (default: local, trust auth, db test)
#        IVRPAY_BIN=path/to/ivrpay           measures that binary instead of building ./cmd/ivrpay
#        ENGINES="sqlite"                    measures only some engines (default: "sqlite postgres")
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
PG=${IVRPAY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "${schema:-}" ]]; then psql "$PG" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -n "${IVRPAY_BIN:-}" ]]; then cp "$IVRPAY_BIN" "$work/ivrpay"; else go build -o "$work/ivrpay" ./cmd/ivrpay; fi

# start NAME DB → starts a server, waits until it listens; sets $addr and $pid.
start() {
  local name=$1 db=$2
  "$work/ivrpay" serve --addr 127.0.0.1:0 --db "$db" --vault-key-file "$work/vault.key" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do
    addr=$(grep -o 'msg=listening addr=[^ ]*' "$work/$name.err" | head -1 | cut -d= -f3) || true
    [[ -n "$addr" ]] && return 0
    sleep 0.1
  done
  echo "server $name did not start" >&2
  cat "$work/$name.err" >&2
  exit 1
}

# sample_rss PID... → samples VmRSS (kB) of the pids once a second into $work/rss.
sample_rss() {
  while true; do
    for p in "$@"; do awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null; done >>"$work/rss"
    sleep 1
  done
}

# load LABEL ARGS… → runs ivrpay loadtest, prints one summary line, keeps the JSON.
load() {
  local label=$1
  shift
  "$work/ivrpay" loadtest --base-url "$urls" --api-key "$key" --duration "$DURATION" --json "$@" \
    >"$work/$label.json" 2>/dev/null || { echo "$label: loadtest FAILED"; cat "$work/$label.json"; exit 1; }
  jq -r --arg l "$label" '"\($l): \(.charged) charged in \(.seconds|floor)s = \(.charges_per_second*10|round/10) charges/s; charge latency ms p50 \(.charge_latency_ms.p50*10|round/10) p95 \(.charge_latency_ms.p95*10|round/10) p99 \(.charge_latency_ms.p99*10|round/10) max \(.charge_latency_ms.max*10|round/10); errors \(.outcomes|del(.OK)|tostring); mismatches \(.mismatches); audit \(.audit|tostring)"' \
    "$work/$label.json"
}

# measure ENGINE → the peak search and the half-peak latency run.
measure() {
  local engine=$1 peak=0
  : >"$work/rss"
  sample_rss "${server_pids[@]}" &
  local sampler=$!
  for c in 16 32 64; do
    load "$engine-closed-$c" --concurrency "$c"
    peak=$(jq -r --arg p "$peak" '[.charges_per_second, ($p|tonumber)] | max' "$work/$engine-closed-$c.json")
  done
  local half
  half=$(jq -n --arg p "$peak" '($p|tonumber)/2 | floor')
  echo "$engine: peak $peak charges/s; open loop at half of it, $half calls/s:"
  load "$engine-open-$half" --rate "$half"
  kill "$sampler"
  echo "$engine: peak VmRSS per server $(sort -n "$work/rss" | tail -1) kB"
}

ENGINES=${ENGINES:-sqlite postgres}
if [[ " $ENGINES " == *" sqlite "* ]]; then
  echo "== SQLite, one server ($(nproc) cores)"
  start sqlite "$work/bench.db"
  urls="http://$addr"
  server_pids=("$pid")
  key=$(awk '$1 == "admin" && $2 == "api_key" {print $3}' "$work/sqlite.out")
  measure sqlite
fi

[[ " $ENGINES " == *" postgres "* ]] || exit 0
echo "== PostgreSQL, two servers"
schema="bench_$(date +%s)"
psql "$PG" -qc "CREATE SCHEMA $schema"
if [[ "$PG" == *\?* ]]; then dsn="$PG&search_path=$schema"; else dsn="$PG?search_path=$schema"; fi
start pg1 "$dsn"
urls="http://$addr"
server_pids=("$pid")
key=$(awk '$1 == "admin" && $2 == "api_key" {print $3}' "$work/pg1.out")
start pg2 "$dsn"
urls="$urls,http://$addr"
server_pids+=("$pid")
measure postgres
