#!/usr/bin/env bash
# Authenticated GET /api/v1/auth/me against a running GAD: logs in as the given user, then
# loads /auth/me with wrk (signature, claims, revocation, rate limits and a user read per
# request). The server's limits must allow the load (GAD_RATE_LIMIT_GENERAL).
#   loadtest/auth-me.sh <email> <password> [base-url] [duration] [connections]
set -euo pipefail
email=$1
password=$2
base=${3:-http://127.0.0.1:8080}
duration=${4:-15s}
connections=${5:-64}
token=$("$(dirname "$0")/token.sh" "$email" "$password" "$base")
"$(dirname "$0")/wrk.sh" auth-me "$base/api/v1/auth/me" "$duration" "$connections" 1 "Authorization: Bearer $token"
