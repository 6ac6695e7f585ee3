#!/usr/bin/env bash
# The request mix of the replaced system's load test against a running GAD (wrk, mix.lua), then
# its physical limit in the same run: pgbench with the same statements in the same proportions
# at the same concurrency. /metrics and /api/v1/health cost the database nothing, so the limit
# in requests/s is pgbench's tps ÷ 0.84. Each side also prints its CPU per request (or per
# transaction) by PostgreSQL, GAD and the rest (setup.sh). Needs loadtest/seed.sh's data and a
# server whose rate limits allow the load (GAD_RATE_LIMIT_GENERAL).
#   loadtest/mix/run.sh [connections] [seconds] [base-url]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
connections=${1:-16}
seconds=${2:-20}
base=${3:-http://127.0.0.1:8080}
out="$root/target/loadtest"
mkdir -p "$out"
source "$root/loadtest/mix/setup.sh"

warmup=${MIX_WARMUP:-5}
mix() { WRK_LUA_PREFIX="$root/loadtest/mix/mix.lua" "$root/loadtest/wrk.sh" "$1" "$base/api/v1/tasks" "$2s" "$connections" 2; }
mixed() { statements "$1" tasks-list.sql@336 task-create.sql@252 task-detail.sql@252; }

mix "mix-warmup-c$connections" "$warmup" >/dev/null
settle
echo "GAD, the mix, $connections connections, ${seconds}s:"
before=$(cpu_ticks)
mix "mix-c$connections" "$seconds"
after=$(cpu_ticks)
read -r requests rps < <(python3 -c 'import json,sys; run = json.load(open(sys.argv[1])); print(run["requests"], run["rps"])' "$out/mix-c$connections.json")
cpu_report "CPU per request" "$requests" "$before" "$after"

mixed "$warmup" >/dev/null
settle
echo "pgbench, the same statements in the same proportions, $connections clients:"
before=$(cpu_ticks)
mixed "$seconds" | tee "$out/mix-pgbench-c$connections.txt" | grep -E '^tps|latency average'
after=$(cpu_ticks)
transactions=$(awk '/actually processed/ { print $NF }' "$out/mix-pgbench-c$connections.txt")
cpu_report "CPU per transaction (the rest is pgbench's client)" "$transactions" "$before" "$after"
tps=$(awk '/^tps/ { print $3 }' "$out/mix-pgbench-c$connections.txt")
python3 -c 'import sys; rps, tps = map(float, sys.argv[1:]); limit = tps / 0.84; print(f"limit {limit:.0f} requests/s; GAD {rps:.0f} requests/s = {100 * rps / limit:.0f} % of it")' "$rps" "$tps"
