#!/usr/bin/env bash
# A POST endpoint of a running GAD under wrk, as the benchmark operator of loadtest/seed.sh, then
# (when given) a pgbench script of the same statements at the same concurrency: the physical
# limit of this machine, measured in the same run. The server's limits must allow the load
# (GAD_RATE_LIMIT_GENERAL).
#   loadtest/post.sh <label> <path> <json-body> [pgbench-script] [duration-s] [connections] [base-url]
#   e.g. loadtest/post.sh tasks-create /api/v1/tasks "$(cat loadtest/bodies/task.json)" loadtest/pgbench/task-create.sql
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/.data/env"
label=$1
path=$2
# @NOW@ in the body stands for the current instant: bodies carry no calendar dates.
body=${3//@NOW@/$(date -u +%Y-%m-%dT%H:%M:%SZ)}
pgbench_script=${4:-}
seconds=${5:-10}
connections=${6:-32}
base=${7:-http://127.0.0.1:8080}
token=$("$root/loadtest/token.sh" bench@example.org benchmark-password-1 "$base")
request=$(mktemp --suffix=.lua)
trap 'rm -f "$request"' EXIT
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' "$body" >"$request"
# WRK_REQUEST may add Lua that varies each request (a `request` function).
if [[ -n ${WRK_REQUEST:-} ]]; then cat "$WRK_REQUEST" >>"$request"; fi
WRK_LUA_PREFIX="$request" "$root/loadtest/wrk.sh" "$label" "$base$path" "${seconds}s" "$connections" 1 \
    "Authorization: Bearer $token"
if [[ -n $pgbench_script ]]; then
    creator=$(psql "$DATABASE_URL" -qtAc "SELECT id FROM users WHERE email = 'bench@example.org'")
    echo "pgbench, the same statements, $connections clients:"
    PGSSLMODE=disable pgbench -n -M prepared -f "$pgbench_script" -D creator="$creator" -c "$connections" -j 2 -T "$seconds" \
        "$DATABASE_URL" | grep -E 'tps|latency'
fi
