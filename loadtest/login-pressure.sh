#!/usr/bin/env bash
# Liveness latency while logins run: 20 logins/s (each an argon2id verification) in the
# background, and wrk on /health/live at the same time. Hashing runs on the blocking pool, so
# the async workers must stay responsive.
#   loadtest/login-pressure.sh <email> <password> [base-url] [duration-s] [logins-per-s]
set -euo pipefail
email=$1
password=$2
base=${3:-http://127.0.0.1:8080}
seconds=${4:-15}
rate=${5:-20}
body="{\"email\":\"$email\",\"password\":\"$password\"}"
interval=$(python3 -c "print(1/$rate)")
logins=0
(
    end=$((SECONDS + seconds))
    while ((SECONDS < end)); do
        curl -s -o /dev/null -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' -d "$body" &
        sleep "$interval"
    done
    wait
) &
pressure=$!
"$(dirname "$0")/wrk.sh" health-live-under-logins "$base/health/live" "${seconds}s" 16 1
wait "$pressure"
