#!/usr/bin/env bash
# Smoke test of a running GAD: health, readiness, the OpenAPI document, the docs UI, the error
# envelope and the security headers. Read-only: it sends GET requests and changes nothing.
#
#   deploy/smoke-test.sh [BASE_URL]        # default http://127.0.0.1:8080
#
# Prints one line per check (ok / FAIL) and exits 1 if any check failed, 2 on bad usage.
# Needs bash, curl and grep.
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

# GET $1 and keep the status in $status, the headers in $work/<name>.headers and the body in
# $work/<name>.body. A connection error gives status 000 and the reason in $work/<name>.error.
fetch() {
    local path=$1 name=$2
    status=$(curl --silent --show-error --connect-timeout 5 --max-time 15 \
        --header 'Accept: application/json, text/html;q=0.9' \
        --dump-header "$work/$name.headers" --output "$work/$name.body" \
        --write-out '%{http_code}' "$base$path" 2>"$work/$name.error") || status=000
    touch "$work/$name.headers" "$work/$name.body"
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

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
