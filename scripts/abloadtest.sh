#!/usr/bin/env bash
# A/B of `ivrpay loadtest` on SQLite between two revisions, on this machine,
# in one run: each round starts a fresh server of A, then of B, and drives
# each with the same load generator (B's loadtest command) for DURATION at
# CONCURRENCY callers, alternating so that the machine's drift hits both.
#
# Usage: scripts/abloadtest.sh REV_A [REV_B]   (REV_B defaults to the working tree)
#        ROUNDS=3 DURATION=15s CONCURRENCY=16
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=${2:-}
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-15s} CONCURRENCY=${CONCURRENCY:-16}
work=$(mktemp -d)
pid=
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; git worktree remove --force "$work/a" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

git worktree add -q --detach "$work/a" "$A"
(cd "$work/a" && go build -o "$work/ivrpay-a" ./cmd/ivrpay)
if [[ -n "$B" ]]; then
  git worktree add -q --detach "$work/b" "$B"
  (cd "$work/b" && go build -o "$work/ivrpay-b" ./cmd/ivrpay)
  git worktree remove --force "$work/b"
else
  go build -o "$work/ivrpay-b" ./cmd/ivrpay
fi

run() { # run LABEL BIN → one loadtest against a fresh SQLite server of BIN
  local label=$1 bin=$2 dir
  dir=$(mktemp -d -p "$work")
  "$bin" serve --addr 127.0.0.1:0 --db "$dir/db" --vault-key-file "$dir/vault.key" >"$dir/out" 2>"$dir/err" &
  pid=$!
  local addr=
  for _ in $(seq 1 100); do
    addr=$(grep -o 'msg=listening addr=[^ ]*' "$dir/err" | head -1 | cut -d= -f3) || true
    [[ -n "$addr" ]] && break
    sleep 0.1
  done
  local key
  key=$(awk '$1 == "admin" && $2 == "api_key" {print $3}' "$dir/out")
  "$work/ivrpay-b" loadtest --base-url "http://$addr" --api-key "$key" --duration "$DURATION" --concurrency "$CONCURRENCY" --json \
    2>/dev/null >"$dir/report.json" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%s %.1f charges/s p50 %.1f ms p99 %.1f ms errors %s" % (sys.argv[2], r["charges_per_second"], r["charge_latency_ms"]["p50"], r["charge_latency_ms"]["p99"], {k:v for k,v in r["outcomes"].items() if k!="OK"}))' "$dir/report.json" "$label"
}

echo "A = $A, B = ${B:-working tree}; $ROUNDS rounds of $DURATION at $CONCURRENCY callers; $(nproc) cores"
for i in $(seq 1 "$ROUNDS"); do
  run "round $i A" "$work/ivrpay-a"
  run "round $i B" "$work/ivrpay-b"
done
