#!/usr/bin/env bash
# Emergency dispatch under concurrency: wrk posts emergencies at random points of the seeded area
# (or all at one point with SAME_POINT=1, the worst case: every request wants the same officers),
# then the same statements run through pgbench; each phase starts with the benchmark officers
# available again. Afterwards it checks that no officer was given two emergencies.
#   loadtest/emergency.sh [duration-s] [connections] [base-url]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/.data/env"
seconds=${1:-5}
connections=${2:-50}
base=${3:-http://127.0.0.1:8080}
reset="UPDATE officers SET availability = 'available' WHERE badge_number LIKE 'PERF-%' AND availability = 'on_task'"
psql "$DATABASE_URL" -qc "$reset"
spread=$(mktemp --suffix=.lua)
trap 'rm -f "$spread"' EXIT
if [[ ${SAME_POINT:-0} != 1 ]]; then
    cat >"$spread" <<'LUA'
request = function()
  local body = string.format('{"lat":%.5f,"lng":%.5f,"title":"Bench emergency"}',
                             40.27 + math.random() * 0.3, -3.90 + math.random() * 0.4)
  return wrk.format(nil, nil, nil, body)
end
LUA
fi
before=$(psql "$DATABASE_URL" -qtAc "SELECT coalesce(max(created_at), now()) FROM tasks")
WRK_REQUEST="$spread" "$root/loadtest/post.sh" emergency /api/v1/tasks/emergency "$(cat "$root/loadtest/bodies/emergency.json")" "" \
    "$seconds" "$connections" "$base"
psql "$DATABASE_URL" -qtAc "SELECT 'emergencies: ' || count(*) || ', assigned: ' || count(a.officer_id) \
    || ', officers given two or more: ' || (SELECT count(*) FROM (SELECT a2.officer_id FROM task_assignments a2 \
       JOIN tasks t2 ON t2.id = a2.task_id WHERE t2.kind = 'emergency' AND t2.created_at > '$before' \
       GROUP BY a2.officer_id HAVING count(*) > 1) twice) \
    FROM tasks t LEFT JOIN task_assignments a ON a.task_id = t.id WHERE t.kind = 'emergency' AND t.created_at > '$before'"
psql "$DATABASE_URL" -qc "$reset"
creator=$(psql "$DATABASE_URL" -qtAc "SELECT id FROM users WHERE email = 'bench@example.org'")
echo "pgbench, the same statements, $connections clients:"
same_point=$([[ ${SAME_POINT:-0} == 1 ]] && echo 1 || echo 0)
PGSSLMODE=disable pgbench -n -M prepared -f "$root/loadtest/pgbench/emergency.sql" -D creator="$creator" -D same_point="$same_point" \
    -c "$connections" -j 2 \
    -T "$seconds" "$DATABASE_URL" | grep -E 'tps|latency|failed'
psql "$DATABASE_URL" -qc "$reset"
