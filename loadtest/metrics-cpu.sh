#!/usr/bin/env bash
# CPU time the server spends per `GET /metrics` scrape: one connection scraping back to back
# for a few seconds, the server process's CPU time (user + system, /proc/<pid>/stat) divided by
# the scrapes served. CPU time, not wall time, so a busy machine does not inflate it; it includes
# the HTTP request itself (an upper bound of the rendering cost). Also prints the scrape's size
# and series count.
#   loadtest/metrics-cpu.sh <server-pid> [seconds] [url]
set -euo pipefail
pid=$1
seconds=${2:-5}
url=${3:-http://127.0.0.1:8080/metrics}
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
scrape=$(curl -fsS "$url")
echo "scrape: $(wc -c <<<"$scrape") bytes, $(grep -vc '^#' <<<"$scrape") samples"
before=$(cpu)
requests=$(wrk -t1 -c1 -d"${seconds}s" "$url" | awk '/requests in/ { print $1 }')
after=$(cpu)
python3 -c 'import sys; t, n, hz = map(float, sys.argv[1:]); print(f"{int(n)} scrapes, {1000 * t / hz / n:.3f} ms of server CPU per scrape")' \
    "$((after - before))" "$requests" "$ticks"
