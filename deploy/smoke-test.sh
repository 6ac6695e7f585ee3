#!/usr/bin/env bash
# Smoke test of a running GAD: health, readiness, the OpenAPI document, the docs UI, the error
# envelope and the security headers; then, with a user's credentials, login, a task round trip
# (create, read, delete) announced over WebSocket, and logout; and the Telegram webhook's secret
# check when the webhook route exists.
#
#   deploy/smoke-test.sh [BASE_URL]        # default http://127.0.0.1:8080
#   SMOKE_EMAIL=smoke@… SMOKE_PASSWORD=… deploy/smoke-test.sh https://gad.example.org
#
# Without SMOKE_EMAIL and SMOKE_PASSWORD it is read-only (GET requests and two refused webhook
# calls). With them, the user must be an admin or supervisor (a dedicated account: it creates and
# deletes one task titled "smoke test …"). Prints one line per check (ok / FAIL / skip) and
# exits 1 if any check failed, 2 on bad usage. Needs bash, curl and grep; python3 for the
# WebSocket step. The password is never printed.
set -euo pipefail

usage() {
    echo "usage: $0 [BASE_URL]   (default http://127.0.0.1:8080)" >&2
    exit 2
}

case ${1:-} in
    -h | --help) usage ;;
esac
[[ $# -le 1 ]] || usage
command -v curl >/dev/null || { echo "smoke-test: curl is required" >&2; exit 2; }

base=${1:-http://127.0.0.1:8080}
base=${base%/}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

ok() {
    printf 'ok    %s\n' "$1"
    passed=$((passed + 1))
}

fail() {
    printf 'FAIL  %s: %s\n' "$1" "$2"
    failed=$((failed + 1))
}

# GET $1 (or: METHOD=… and more curl arguments after $2) and keep the status in $status, the
# headers in $work/<name>.headers and the body in $work/<name>.body. A connection error gives
# status 000 and the reason in $work/<name>.error.
fetch() {
    local path=$1 name=$2
    shift 2
    status=$(curl --silent --show-error --connect-timeout 5 --max-time 15 --request "${METHOD:-GET}" \
        --header 'Accept: application/json, text/html;q=0.9' "$@" \
        --dump-header "$work/$name.headers" --output "$work/$name.body" \
        --write-out '%{http_code}' "$base$path" 2>"$work/$name.error") || status=000
    touch "$work/$name.headers" "$work/$name.body"
}

skip() {
    printf 'skip  %s: %s\n' "$1" "$2"
}

# The string value of JSON member "$2" in the body of response $1 (flat members only).
member() {
    grep -Eo "\"$2\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" "$work/$1.body" | head -n 1 | sed -E 's/.*:[[:space:]]*"([^"]*)"/\1/'
}

# A short description of why a response is not what was expected.
describe() {
    local name=$1
    if [[ $status == 000 ]]; then
        tr '\n' ' ' <"$work/$name.error" | head -c 200
    else
        printf 'HTTP %s, body: %s' "$status" "$(tr -d '\r\n' <"$work/$name.body" | head -c 200)"
    fi
}

# Create a task while subscribed to `tasks` over WebSocket, see its event, read it, delete it,
# and log out. Needs $access.
smoke_task_round_trip() {
    local auth="Authorization: Bearer $access" title task ws_pid='' scheduled
    title="smoke test $(date -u +%Y%m%dT%H%M%SZ)-$$"
    scheduled=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)

    METHOD=POST fetch /api/v1/ws/tickets ticket --header "$auth"
    local ticket
    ticket=$(member ticket ticket)
    if [[ $status == 201 && -n $ticket ]] && command -v python3 >/dev/null; then
        local ws_url="${base/#http/ws}/ws/connect?ticket=$ticket"
        python3 "$(dirname "$0")/smoke-ws.py" "$ws_url" "$title" >"$work/ws.out" 2>&1 &
        ws_pid=$!
        # Wait (bounded) until the socket is subscribed, so that the event cannot be missed.
        for _ in $(seq 100); do
            grep -qE '^(subscribed|error)' "$work/ws.out" && break
            kill -0 "$ws_pid" 2>/dev/null || break
            sleep 0.1
        done
    elif [[ $status != 201 ]]; then
        fail 'POST /api/v1/ws/tickets gives a ticket' "$(describe ticket)"
    else
        skip 'WebSocket event' 'python3 is not installed'
    fi

    METHOD=POST fetch /api/v1/tasks created --header "$auth" --header 'Content-Type: application/json' \
        --data "{\"title\": \"$title\", \"kind\": \"patrol\", \"scheduled_start\": \"$scheduled\"}"
    task=$(member created id)
    if [[ $status == 201 && -n $task ]]; then
        ok 'POST /api/v1/tasks creates a task (201)'
    else
        fail 'POST /api/v1/tasks creates a task (201)' "$(describe created)"
    fi

    if [[ -n $ws_pid ]]; then
        wait "$ws_pid" || true
        if [[ -n $task ]] && grep -qx "event $task" "$work/ws.out"; then
            ok 'the task.created event arrives over WebSocket'
        else
            fail 'the task.created event arrives over WebSocket' "$(tr '\n' ' ' <"$work/ws.out" | head -c 200)"
        fi
    fi

    if [[ -n $task ]]; then
        fetch "/api/v1/tasks/$task" read --header "$auth"
        if [[ $status == 200 ]] && body_has_member read title "$title"; then
            ok 'GET /api/v1/tasks/{id} reads it back'
        else
            fail 'GET /api/v1/tasks/{id} reads it back' "$(describe read)"
        fi
        METHOD=DELETE fetch "/api/v1/tasks/$task" deleted --header "$auth"
        fetch "/api/v1/tasks/$task" gone --header "$auth"
        if [[ $status == 404 ]]; then
            ok 'DELETE /api/v1/tasks/{id} removes it (then 404)'
        else
            fail 'DELETE /api/v1/tasks/{id} removes it (then 404)' "$(describe gone)"
        fi
    fi

    METHOD=POST fetch /api/v1/auth/logout logout --header "$auth"
    if [[ $status == 204 ]]; then
        ok 'POST /api/v1/auth/logout (204)'
    else
        fail 'POST /api/v1/auth/logout (204)' "$(describe logout)"
    fi
}

# Whether the body of response $1 contains the JSON member "$2": "$3" (whitespace allowed).
body_has_member() {
    grep -Eq "\"$2\"[[:space:]]*:[[:space:]]*\"$3\"" "$work/$1.body"
}

# Whether the headers of response $1 have header $2 (any case) with a value matching ERE $3.
header_matches() {
    grep -Eiq "^$2:[[:space:]]*$3[[:space:]]*\$" "$work/$1.headers"
}

echo "smoke test of $base"

# Liveness: no dependencies, always 200 {"status":"ok"}.
fetch /health/live live
if [[ $status == 200 ]] && body_has_member live status ok; then
    ok 'GET /health/live is 200 {"status":"ok"}'
else
    fail 'GET /health/live is 200 {"status":"ok"}' "$(describe live)"
fi

# Readiness: database reachable and migrated, Redis if configured. The 503 body says which check
# failed.
fetch /health/ready ready
if [[ $status == 200 ]]; then
    ok 'GET /health/ready is 200'
else
    fail 'GET /health/ready is 200' "$(describe ready)"
fi

fetch /api/v1/health health
if [[ $status == 200 ]] && body_has_member health status ok; then
    ok 'GET /api/v1/health reports "status":"ok"'
else
    fail 'GET /api/v1/health reports "status":"ok"' "$(describe health)"
fi

fetch /api/v1/openapi.json openapi
if [[ $status == 200 ]] && body_has_member openapi openapi '3\.1\.0'; then
    ok 'GET /api/v1/openapi.json is OpenAPI 3.1.0'
else
    fail 'GET /api/v1/openapi.json is OpenAPI 3.1.0' "$(describe openapi)"
fi

fetch /docs/ docs
if [[ $status == 200 ]] && header_matches docs content-type 'text/html.*' && grep -q swagger-ui "$work/docs.body"; then
    ok 'GET /docs/ is the Swagger UI page'
else
    fail 'GET /docs/ is the Swagger UI page' "$(describe docs)"
fi

# An unknown path: 404 in the error envelope, with the request id in a header.
fetch "/api/v1/smoke-test-no-such-path-$$" missing
if [[ $status == 404 ]] && body_has_member missing code not_found; then
    ok 'unknown path is 404 with "code":"not_found"'
else
    fail 'unknown path is 404 with "code":"not_found"' "$(describe missing)"
fi
if header_matches missing x-request-id '[^[:space:]]+'; then
    ok 'unknown path has an x-request-id header'
else
    fail 'unknown path has an x-request-id header' "no x-request-id in the response headers"
fi

# Security headers, on the liveness response and on the 404.
for name in live missing; do
    if [[ $name == live ]]; then what='/health/live'; else what='unknown path'; fi
    if header_matches "$name" x-content-type-options nosniff; then
        ok "$what: X-Content-Type-Options: nosniff"
    else
        fail "$what: X-Content-Type-Options: nosniff" "missing or different"
    fi
    if header_matches "$name" x-frame-options DENY; then
        ok "$what: X-Frame-Options: DENY"
    else
        fail "$what: X-Frame-Options: DENY" "missing or different"
    fi
    if header_matches "$name" content-security-policy '.+'; then
        ok "$what: Content-Security-Policy present"
    else
        fail "$what: Content-Security-Policy present" "missing"
    fi
done

# Telegram: a webhook call with a wrong secret is refused with 403, one without it with 401
# (docs/API.md §9.6). The route exists only when the bot runs in webhook mode (or polls with a
# webhook secret); without it the step is skipped.
METHOD=POST fetch /telegram/webhook webhook --header 'Content-Type: application/json' \
    --header "X-Telegram-Bot-Api-Secret-Token: smoke-test-wrong-secret-$$" --data '{"update_id": 0}'
case $status in
    403)
        ok "POST /telegram/webhook with a wrong secret is refused (403)"
        METHOD=POST fetch /telegram/webhook webhook_bare --header 'Content-Type: application/json' \
            --data '{"update_id": 0}'
        if [[ $status == 401 ]]; then
            ok "POST /telegram/webhook without the secret is refused (401)"
        else
            fail 'POST /telegram/webhook without the secret is refused (401)' "$(describe webhook_bare)"
        fi
        ;;
    404) skip 'Telegram webhook secret check' "no webhook route (Telegram not in webhook mode)" ;;
    *) fail 'POST /telegram/webhook with a wrong secret is refused (403)' "$(describe webhook)" ;;
esac

if [[ -z ${SMOKE_EMAIL:-} || -z ${SMOKE_PASSWORD:-} ]]; then
    skip 'login, task round trip, WebSocket event' 'SMOKE_EMAIL and SMOKE_PASSWORD are not set'
else
    # The credentials travel in a file, not on curl's command line (visible in ps).
    printf '{"email": "%s", "password": "%s"}' "$SMOKE_EMAIL" "${SMOKE_PASSWORD//\"/\\\"}" >"$work/login.json"
    METHOD=POST fetch /api/v1/auth/login login --header 'Content-Type: application/json' --data "@$work/login.json"
    access=$(member login access_token)
    if [[ $status == 200 && -n $access ]]; then
        ok 'POST /api/v1/auth/login gives an access token'
        smoke_task_round_trip
    else
        fail 'POST /api/v1/auth/login gives an access token' "HTTP $status"
    fi
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
