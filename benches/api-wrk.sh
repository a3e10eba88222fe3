#!/usr/bin/env bash
# API read throughput measured from outside, as a user would (`make bench-api`).
#
# Starts the release binary's `provisioner simulate` and `provisioner serve`
# (embedded mongod in a temporary directory, or MONGODB_URI), syncs the ready
# platform-admin token, creates TENANTS tenants and waits until they are
# active, then loads four routes with `wrk -t2 -c16` (installed with apt-get
# if missing) and prints the answer sizes, req/s, p50 and p99 per route and
# the ratio of `GET /tenants/{slug}` to `/healthz` in the same run. Nothing
# is asserted.
#
# Settings (environment): DURATION (wrk -d, default 5s), TENANTS (default 60),
# CONNECTIONS (default 16), THREADS (default 2), BASE_PORT (default 23000:
# the API listens on it, the simulators on +1..+3, the embedded mongod on +4),
# KEEP=1 keeps the temporary directory (logs), PROVISIONER_BIN=path measures
# another build of the binary (nothing is built then).
set -euo pipefail

DURATION=${DURATION:-5s}
TENANTS=${TENANTS:-60}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
BASE_PORT=${BASE_PORT:-23000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PROVISIONER_BIN:-"$ROOT/target/release/provisioner"}
API="http://127.0.0.1:$BASE_PORT"

if ! command -v wrk >/dev/null; then
    echo "installing wrk (apt-get) ..." >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
if [ -z "${PROVISIONER_BIN:-}" ]; then (cd "$ROOT" && cargo build --release --quiet); fi

WORK=$(mktemp -d -t dezky-api-wrk-XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$BIN" simulate --authentik-port $((BASE_PORT + 1)) --stalwart-port $((BASE_PORT + 2)) \
    --ocis-port $((BASE_PORT + 3)) --listen-addr "127.0.0.1:$BASE_PORT" \
    >"$WORK/simulate.out" 2>"$WORK/simulate.log" &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^export TOKEN=' "$WORK/simulate.out" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1090
. <(grep '^export' "$WORK/simulate.out")

LISTEN_ADDR="127.0.0.1:$BASE_PORT" MONGOD_PORT=$((BASE_PORT + 4)) MONGOD_DATA_DIR="$WORK/mongo" \
    RUST_LOG=warn "$BIN" serve >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do curl -sf "$API/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$API/readyz" >/dev/null || { echo "serve did not become ready; see $WORK/serve.log" >&2; KEEP=1; exit 1; }

AUTH="Authorization: Bearer $TOKEN"
curl -sf -H "$AUTH" "$API/users/me" >/dev/null
for i in $(seq "$TENANTS"); do
    curl -sf -o /dev/null -H "$AUTH" -H 'Content-Type: application/json' \
        -d "{\"slug\":\"bench-$i\",\"name\":\"Bench $i\",\"plan\":\"team\",\"domains\":[\"bench-$i.test\"]}" \
        "$API/tenants"
done
for _ in $(seq 600); do
    active=$(curl -sf -H "$AUTH" "$API/tenants?limit=500" | grep -o '"phase":"active"' | wc -l)
    [ "$active" -ge "$TENANTS" ] && break
    sleep 0.1
done
echo "$TENANTS tenants stored ($active active); wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores"
one=$(curl -sf -H "$AUTH" "$API/tenants/bench-7" | wc -c)
page=$(curl -sf -H "$AUTH" "$API/tenants?limit=50" | wc -c)
echo "answer sizes: one tenant $one B, a page of 50 $page B"

# `wrk --latency` output → "req/s p50 p99" (latencies in ms).
measure() {
    local out rps p50 p99
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$AUTH" "$API$1")
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "$1 answered non-2xx:" >&2
        echo "$out" >&2
    fi
    rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
    p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    }'
}

printf '%-22s %10s %9s %9s\n' route req/s 'p50 ms' 'p99 ms'
declare -A RPS
for route in /healthz /readyz /tenants/bench-7 '/tenants?limit=50'; do
    read -r rps p50 p99 < <(measure "$route")
    RPS[$route]=$rps
    printf '%-22s %10s %9s %9s\n' "$route" "$rps" "$p50" "$p99"
done
awk -v one="${RPS[/tenants/bench-7]}" -v health="${RPS[/healthz]}" \
    'BEGIN { printf "GET /tenants/{slug} / GET /healthz = %.1f%%\n", 100 * one / health }'
