#!/usr/bin/env bash
# Each database endpoint of the mix alone beside its physical limit: wrk with the mix's request
# for that endpoint, then pgbench with the endpoint's script at the same concurrency. Each side
# gets a warm-up, then VACUUM ANALYZE and a checkpoint, as in run.sh. Needs loadtest/seed.sh's
# data and a server whose rate limits allow the load (GAD_RATE_LIMIT_GENERAL).
#   loadtest/mix/endpoints.sh [connections] [seconds] [base-url]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/.data/env"
connections=${1:-16}
seconds=${2:-10}
base=${3:-http://127.0.0.1:8080}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }

psql "$DATABASE_URL" -qc "DROP TABLE IF EXISTS bench_task_ids;
    CREATE TABLE bench_task_ids AS
        SELECT row_number() OVER () AS n, id FROM
            (SELECT id FROM tasks WHERE deleted_at IS NULL ORDER BY random() LIMIT 10000) AS picked;
    CREATE UNIQUE INDEX ON bench_task_ids (n);"
ids=$(mktemp)
lua=$(mktemp --suffix=.lua)
trap 'rm -f "$ids" "$lua"' EXIT
psql "$DATABASE_URL" -qtAc "SELECT id FROM bench_task_ids ORDER BY n" >"$ids"
export MIX_TOKEN=$("$root/loadtest/token.sh" bench@example.org benchmark-password-1 "$base") MIX_IDS=$ids
export MIX_BODY=$(sed "s/@NOW@/$(date -u +%Y-%m-%dT%H:%M:%SZ)/" "$root/loadtest/bodies/task.json")
creator=$(psql "$DATABASE_URL" -qtAc "SELECT id FROM users WHERE email = 'bench@example.org'")
settle() { psql "$DATABASE_URL" -qc "VACUUM ANALYZE" -qc "CHECKPOINT"; }
statements() { pgbench -n -M prepared -D creator="$creator" -c "$connections" -j 2 -T "$2" -f "$1" "$DATABASE_URL"; }

for endpoint in list detail create; do
    case $endpoint in
        list) request='wrk.format("GET", "/api/v1/tasks?limit=20", auth)'; script=tasks-list ;;
        detail) request='wrk.format("GET", "/api/v1/tasks/" .. ids[math.random(1, #ids)], auth)'; script=task-detail ;;
        create) request='wrk.format("POST", "/api/v1/tasks", json, body)'; script=task-create ;;
    esac
    # The mix's set-up (token, ids, bodies), with a request() of this endpoint only.
    { sed '/^function request()/,$d' "$root/loadtest/mix/mix.lua"; printf 'function request()\n  return %s\nend\n' "$request"; } >"$lua"
    WRK_LUA_PREFIX=$lua "$root/loadtest/wrk.sh" "endpoint-$endpoint-warmup" "$base/" 3s "$connections" 2 >/dev/null
    settle
    WRK_LUA_PREFIX=$lua "$root/loadtest/wrk.sh" "endpoint-$endpoint" "$base/" "${seconds}s" "$connections" 2 >/dev/null
    statements "$root/loadtest/pgbench/$script.sql" 3 >/dev/null
    settle
    tps=$(statements "$root/loadtest/pgbench/$script.sql" "$seconds" | awk '/^tps/ { print $3 }')
    python3 - "$root/target/loadtest/endpoint-$endpoint.json" "$tps" "$endpoint" <<'PY'
import json, sys
run, tps, endpoint = json.load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
print(f"{endpoint}: GAD {run['rps']:.0f} requests/s (p99 {run['latency_ms']['p99']:.1f} ms, "
      f"{run['errors'] + run['non_2xx']} errors); pgbench {tps:.0f} tps; GAD at {100 * run['rps'] / tps:.0f} %")
PY
done
