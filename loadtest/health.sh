#!/usr/bin/env bash
# Throughput and latency of GET /health/live against a running GAD (default: `just run` on
# 127.0.0.1:8080), measured with wrk from this machine. Prints wrk's report and writes a JSON
# summary to target/loadtest/health-live.json.
#   loadtest/health.sh [base-url] [duration] [connections] [threads]
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
duration=${2:-15s}
connections=${3:-64}
threads=${4:-2}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
out="$(cd "$(dirname "$0")/.." && pwd)/target/loadtest"
mkdir -p "$out"
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
cat >"$summary.lua" <<'LUA'
done = function(summary, latency, requests)
  local f = io.open(os.getenv("WRK_SUMMARY"), "w")
  f:write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"errors":%d,"non_2xx":%d,' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
  f:close()
end
LUA
WRK_SUMMARY="$out/health-live.json" wrk -t "$threads" -c "$connections" -d "$duration" --latency \
    -s "$summary.lua" "$base/health/live"
rm -f "$summary.lua"
echo "summary: $(cat "$out/health-live.json")"
