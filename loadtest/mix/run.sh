#!/usr/bin/env bash
# The request mix of the replaced system's load test against a running GAD (wrk, mix.lua), then
# its physical limit in the same run: pgbench with the same statements in the same proportions
# at the same concurrency. /metrics and /api/v1/health cost the database nothing, so the limit
# in requests/s is pgbench's tps ÷ 0.84. Needs loadtest/seed.sh's data and a server whose rate
# limits allow the load (GAD_RATE_LIMIT_GENERAL).
#   loadtest/mix/run.sh [connections] [seconds] [base-url]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/.data/env"
connections=${1:-16}
seconds=${2:-20}
base=${3:-http://127.0.0.1:8080}
out="$root/target/loadtest"
mkdir -p "$out"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }

# 10,000 random live tasks: the detail requests' ids, the same for wrk and pgbench.
psql "$DATABASE_URL" -qc "DROP TABLE IF EXISTS bench_task_ids;
    CREATE TABLE bench_task_ids AS
        SELECT row_number() OVER () AS n, id FROM
            (SELECT id FROM tasks WHERE deleted_at IS NULL ORDER BY random() LIMIT 10000) AS picked;
    CREATE UNIQUE INDEX ON bench_task_ids (n);"
ids=$(mktemp)
trap 'rm -f "$ids"' EXIT
psql "$DATABASE_URL" -qtAc "SELECT id FROM bench_task_ids ORDER BY n" >"$ids"

token=$("$root/loadtest/token.sh" bench@example.org benchmark-password-1 "$base")
# Both measurements run at steady state: after a warm-up of their own (connections open,
# statements prepared, caches filled), on a vacuumed, analysed database, as autovacuum keeps a
# production one (a server with autovacuum off piles up dead rows, and the plans that go with
# them), and after a checkpoint, so that neither pays for writing out the other's pages.
settle() { psql "$DATABASE_URL" -qc "VACUUM ANALYZE" -qc "CHECKPOINT"; }
warmup=${MIX_WARMUP:-5}
mix() {
    MIX_TOKEN=$token MIX_IDS=$ids MIX_BODY=$(sed "s/@NOW@/$(date -u +%Y-%m-%dT%H:%M:%SZ)/" "$root/loadtest/bodies/task.json") \
        WRK_LUA_PREFIX="$root/loadtest/mix/mix.lua" \
        "$root/loadtest/wrk.sh" "$1" "$base/api/v1/tasks" "$2s" "$connections" 2
}
mix "mix-warmup-c$connections" "$warmup" >/dev/null
settle
echo "GAD, the mix, $connections connections, ${seconds}s:"
mix "mix-c$connections" "$seconds"

creator=$(psql "$DATABASE_URL" -qtAc "SELECT id FROM users WHERE email = 'bench@example.org'")
statements() {
    pgbench -n -M prepared -D creator="$creator" -c "$connections" -j 2 -T "$1" \
        -f "$root/loadtest/pgbench/tasks-list.sql@336" \
        -f "$root/loadtest/pgbench/task-create.sql@252" \
        -f "$root/loadtest/pgbench/task-detail.sql@252" \
        "$DATABASE_URL"
}
statements "$warmup" >/dev/null
settle
echo "pgbench, the same statements in the same proportions, $connections clients:"
statements "$seconds" | tee "$out/mix-pgbench-c$connections.txt" | grep -E '^tps|latency average'
tps=$(awk '/^tps/ { print $3 }' "$out/mix-pgbench-c$connections.txt")
rps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rps"])' "$out/mix-c$connections.json")
python3 -c 'import sys; rps, tps = map(float, sys.argv[1:]); limit = tps / 0.84; print(f"limit {limit:.0f} requests/s; GAD {rps:.0f} requests/s = {100 * rps / limit:.0f} % of it")' "$rps" "$tps"
