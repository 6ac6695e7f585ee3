#!/usr/bin/env bash
# Starts GAD on a scratch database, scrapes /metrics before any API request, and checks that
# every metric the rules, the dashboard and the canary check read is in that scrape.
#   GAD_BIN=… TEST_DATABASE_URL=… deploy/checks/check-metrics.sh   (just check-metrics)
set -euo pipefail
cd "$(dirname "$0")"
source ./gad-instance.sh
start_gad metrics
curl -sf "$GAD_METRICS_URL" >"$checks_work/scrape.txt"
python3 metrics.py "$checks_work/scrape.txt"
