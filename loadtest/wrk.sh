#!/usr/bin/env bash
# Throughput and latency of one GET endpoint of a running GAD, measured with wrk from this
# machine. Prints wrk's report and writes a JSON summary to target/loadtest/<label>.json.
#   loadtest/wrk.sh <label> <url> [duration] [connections] [threads] [header]
#   e.g. loadtest/wrk.sh health-live http://127.0.0.1:8080/health/live 10s 64 1
# WRK_LUA_PREFIX may name a Lua file that shapes the request (method, body, headers).
set -euo pipefail
label=$1
url=$2
duration=${3:-15s}
connections=${4:-64}
threads=${5:-2}
header=${6:-}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
out="$(cd "$(dirname "$0")/.." && pwd)/target/loadtest"
mkdir -p "$out"
script=$(mktemp --suffix=.lua)
trap 'rm -f "$script"' EXIT
if [[ -n ${WRK_LUA_PREFIX:-} ]]; then cat "$WRK_LUA_PREFIX" >"$script"; fi
cat >>"$script" <<'LUA'
done = function(summary, latency, requests)
  local f = io.open(os.getenv("WRK_SUMMARY"), "w")
  f:write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"errors":%d,"non_2xx":%d,' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p95":%.3f,"p99":%.3f,"max":%.3f}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000,
    latency.max / 1000))
  f:close()
end
LUA
args=(-t "$threads" -c "$connections" -d "$duration" --latency -s "$script")
[[ -n $header ]] && args+=(-H "$header")
WRK_SUMMARY="$out/$label.json" wrk "${args[@]}" "$url"
echo "summary: $(cat "$out/$label.json")"
