#!/usr/bin/env bash
# Each database endpoint of the mix alone beside its physical limit: wrk with the mix's request
# for that endpoint, then pgbench with the endpoint's script at the same concurrency. Each side
# gets a warm-up, then VACUUM ANALYZE and a checkpoint, as in run.sh. Needs loadtest/seed.sh's
# data and a server whose rate limits allow the load (GAD_RATE_LIMIT_GENERAL).
#   loadtest/mix/endpoints.sh [connections] [seconds] [base-url]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
connections=${1:-16}
seconds=${2:-10}
base=${3:-http://127.0.0.1:8080}
source "$root/loadtest/mix/setup.sh"
lua=$(mktemp --suffix=.lua)
trap 'rm -f "$ids" "$lua"' EXIT

for endpoint in list detail create; do
    case $endpoint in
        list) request='wrk.format("GET", "/api/v1/tasks?limit=20", auth)'; script=tasks-list.sql ;;
        detail) request='wrk.format("GET", "/api/v1/tasks/" .. ids[math.random(1, #ids)], auth)'; script=task-detail.sql ;;
        create) request='wrk.format("POST", "/api/v1/tasks", json, body)'; script=task-create.sql ;;
    esac
    # The mix's set-up (token, ids, bodies), with a request() of this endpoint only.
    { sed '/^function request()/,$d' "$root/loadtest/mix/mix.lua"; printf 'function request()\n  return %s\nend\n' "$request"; } >"$lua"
    WRK_LUA_PREFIX=$lua "$root/loadtest/wrk.sh" "endpoint-$endpoint-warmup" "$base/" 3s "$connections" 2 >/dev/null
    settle
    WRK_LUA_PREFIX=$lua "$root/loadtest/wrk.sh" "endpoint-$endpoint" "$base/" "${seconds}s" "$connections" 2 >/dev/null
    statements 3 "$script" >/dev/null
    settle
    tps=$(statements "$seconds" "$script" | awk '/^tps/ { print $3 }')
    python3 - "$root/target/loadtest/endpoint-$endpoint.json" "$tps" "$endpoint" <<'PY'
import json, sys
run, tps, endpoint = json.load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
print(f"{endpoint}: GAD {run['rps']:.0f} requests/s (p99 {run['latency_ms']['p99']:.1f} ms, "
      f"{run['errors'] + run['non_2xx']} errors); pgbench {tps:.0f} tps; GAD at {100 * run['rps'] / tps:.0f} %")
PY
done
