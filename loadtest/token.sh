#!/usr/bin/env bash
# Prints an access token of a running GAD for the given account.
#   loadtest/token.sh <email> <password> [base-url]
set -euo pipefail
curl -sf -X POST "${3:-http://127.0.0.1:8080}/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
