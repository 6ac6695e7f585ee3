#!/usr/bin/env bash
# Go/no-go for a canary: reads Prometheus's HTTP API and compares the canary pool with the stable
# pool and the service objectives over the last WINDOW. Prints one line per criterion and the
# verdict. Used at every step of the canary procedure (docs/DEPLOYMENT_GUIDE.md).
#
#   deploy/canary-check.sh [--prometheus URL] [--window 10m] [--min-requests 100]
#
# URL: --prometheus, else PROMETHEUS_URL. No-go when any of these holds for the canary:
#   - fewer than --min-requests requests in the window (too little traffic to judge)
#   - error ratio (5xx) above 2 %, or more than 1 point above the stable pool's
#   - p95 latency above 500 ms or p99 above 1 s (SPEC §8), or p95 above 1.5 × stable's + 50 ms
#   - WebSocket delivery p95 above 300 ms (not judged when it delivered no event in the window)
# and whenever Prometheus cannot be reached, answers an error, or has no data for a query.
# Exits 0 for go, 1 for no-go, 2 on bad usage. Needs bash, curl and python3.
set -euo pipefail

usage() {
    echo "usage: $0 [--prometheus URL] [--window DURATION] [--min-requests N]   (URL defaults to \$PROMETHEUS_URL)" >&2
    exit 2
}

prometheus=${PROMETHEUS_URL:-}
window=10m
min_requests=100
while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || { [[ $1 == -h || $1 == --help ]] || echo "canary-check: $1 needs a value" >&2; usage; }
    case $1 in
        --prometheus) prometheus=$2 ;;
        --window) window=$2 ;;
        --min-requests) min_requests=$2 ;;
        *) usage ;;
    esac
    shift 2
done
[[ -n $prometheus ]] || { echo "canary-check: no Prometheus URL (--prometheus or PROMETHEUS_URL)" >&2; usage; }
[[ $window =~ ^[1-9][0-9]*[smhd]$ ]] || { echo "canary-check: --window must look like 10m" >&2; usage; }
[[ $min_requests =~ ^[0-9]+$ ]] || { echo "canary-check: --min-requests must be a whole number" >&2; usage; }
for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "canary-check: $tool is required" >&2; exit 2; }
done
prometheus=${prometheus%/}

nogo=0
verdict() { # verdict go|no-go TEXT
    if [[ $1 == go ]]; then printf 'go     %s\n' "$2"; else printf 'NO-GO  %s\n' "$2"; nogo=1; fi
}

# The value of an instant query: a number, NaN, `none` (no series) or `error: …`.
query() {
    local body
    body=$(curl --silent --show-error --max-time 10 --get --data-urlencode "query=$1" \
        "$prometheus/api/v1/query" 2>&1) || { echo "error: Prometheus unreachable: ${body:0:200}"; return; }
    python3 -c '
import json, sys
try:
    answer = json.loads(sys.stdin.read())
except ValueError:
    print("error: not a Prometheus API answer"); sys.exit()
if answer.get("status") != "success":
    print("error: " + str(answer.get("error", "query failed"))); sys.exit()
result = answer["data"]["result"]
if answer["data"].get("resultType") == "scalar":
    raw = result[1]
elif not result:
    print("none"); sys.exit()
else:
    raw = result[0]["value"][1]
try:
    number = float(raw)
except (TypeError, ValueError):
    print("error: not a number: " + str(raw)[:50]); sys.exit()
# Only plain numbers reach the shell: NaN, or a float (+Inf as a huge one).
print("NaN" if number != number else repr(min(max(number, -1e300), 1e300)))
' <<<"$body"
}

# Whether "$1 $2 $3" holds, for numbers and arithmetic on them (only query()'s numbers reach it).
holds() { awk "BEGIN { exit !(($1) $2 ($3)) }"; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f ms", s * 1000 }'; }
pct() { awk -v r="$1" 'BEGIN { printf "%.2f %%", r * 100 }'; }

# A query's value, or a no-go saying why there is none. Sets $value; returns 1 when unusable.
measure() { # measure WHAT QUERY
    value=$(query "$2")
    case $value in
        "error: Prometheus unreachable"*)
            verdict no-go "$1: ${value#error: }"
            echo "verdict: NO-GO"
            exit 1
            ;;
        error:*) verdict no-go "$1: ${value#error: }"; return 1 ;;
        none) verdict no-go "$1: no data"; return 1 ;;
    esac
}

user_requests='route!~"/health/.*|/metrics"'
requests() { echo "http_requests_total{pool=\"$1\",$user_requests}"; }
error_ratio() {
    echo "(sum(rate(http_requests_total{pool=\"$1\",status=~\"5..\",$user_requests}[$window])) or vector(0))" \
        "/ sum(rate($(requests "$1")[$window]))"
}
http_quantile() {
    echo "histogram_quantile($2, sum by (le) (rate(http_request_duration_seconds_bucket{pool=\"$1\",$user_requests}[$window])))"
}

echo "canary check against $prometheus over the last $window"

if measure "canary traffic" "sum(increase($(requests canary)[$window]))"; then
    if holds "$value" '>=' "$min_requests"; then
        verdict go "canary traffic: $(printf '%.0f' "$value") requests (at least $min_requests)"
    else
        verdict no-go "canary traffic: $(printf '%.0f' "$value") requests, fewer than $min_requests: too few to judge"
    fi
fi

if measure "canary error ratio" "$(error_ratio canary)"; then
    canary_errors=$value
    if measure "stable error ratio" "$(error_ratio stable)"; then
        stable_errors=$value
        if [[ $canary_errors == NaN ]]; then
            verdict no-go "canary error ratio: no requests"
        elif holds "$canary_errors" '>' 0.02; then
            verdict no-go "canary error ratio $(pct "$canary_errors") is above 2 %"
        elif [[ $stable_errors != NaN ]] && holds "$canary_errors" '>' "$stable_errors + 0.01"; then
            verdict no-go "canary error ratio $(pct "$canary_errors") is more than 1 point above stable's $(pct "$stable_errors")"
        else
            verdict go "canary error ratio $(pct "$canary_errors") (stable $(pct "$stable_errors"))"
        fi
    fi
fi

for quantile in 0.95 0.99; do
    label="p${quantile#0.}"
    limit=$([[ $quantile == 0.95 ]] && echo 0.5 || echo 1)
    measure "canary $label latency" "$(http_quantile canary "$quantile")" || continue
    canary_latency=$value
    measure "stable $label latency" "$(http_quantile stable "$quantile")" || continue
    stable_latency=$value
    if [[ $canary_latency == NaN ]]; then
        verdict no-go "canary $label latency: no requests"
    elif holds "$canary_latency" '>' "$limit"; then
        verdict no-go "canary $label latency $(ms "$canary_latency") is above the objective $(ms "$limit")"
    elif [[ $quantile == 0.95 && $stable_latency != NaN ]] && holds "$canary_latency" '>' "$stable_latency * 1.5 + 0.05"; then
        verdict no-go "canary $label latency $(ms "$canary_latency") is more than 1.5 × stable's $(ms "$stable_latency") + 50 ms"
    else
        verdict go "canary $label latency $(ms "$canary_latency") (stable $(ms "$stable_latency"))"
    fi
done

if measure "canary WebSocket delivery p95" \
    "histogram_quantile(0.95, sum by (le) (rate(ws_delivery_latency_seconds_bucket{pool=\"canary\"}[$window])))"; then
    if [[ $value == NaN ]]; then
        verdict go "canary WebSocket delivery: no event delivered in the window, not judged"
    elif holds "$value" '>' 0.3; then
        verdict no-go "canary WebSocket delivery p95 $(ms "$value") is above 300 ms"
    else
        verdict go "canary WebSocket delivery p95 $(ms "$value")"
    fi
fi

if [[ $nogo -eq 0 ]]; then
    echo "verdict: GO"
else
    echo "verdict: NO-GO"
fi
exit "$nogo"
