#!/usr/bin/env bash
# POST /api/v1/tasks against a running GAD with wrk, and the same statements through pgbench at
# the same concurrency (the physical limit of this machine), in one run. Needs loadtest/seed.sh's
# operator and a server whose limits allow the load (GAD_RATE_LIMIT_GENERAL).
#   loadtest/post-tasks.sh [base-url] [duration] [connections]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/.data/env"
base=${1:-http://127.0.0.1:8080}
duration=${2:-10s}
connections=${3:-32}
token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.org","password":"benchmark-password-1"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
script=$(mktemp --suffix=.lua)
trap 'rm -f "$script"' EXIT
cat >"$script" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"Bench patrol","kind":"patrol","scheduled_start":"2026-12-01T08:00:00Z",' ..
           '"location":{"lat":40.42,"lng":-3.70}}'
LUA
WRK_LUA_PREFIX="$script" "$root/loadtest/wrk.sh" tasks-create "$base/api/v1/tasks" "$duration" "$connections" 1 \
    "Authorization: Bearer $token"
creator=$(psql "$DATABASE_URL" -qtAc "SELECT id FROM users WHERE email = 'bench@example.org'")
echo "pgbench, the same statements, $connections clients:"
pgbench -n -M prepared -f "$root/loadtest/pgbench/task-create.sql" -D creator="$creator" \
    -c "$connections" -j 2 -T "${duration%s}" "$DATABASE_URL" | grep -E 'tps|latency'
