#!/usr/bin/env bash
# Contract fuzzing: serves `gad` on a scratch database with an administrator, runs schemathesis
# with every check against the OpenAPI document it serves, authenticated, and fails on any
# failure. Each operation gets FUZZ_EXAMPLES generated cases (default 30); further arguments go
# to `st run` as they are.
#   scripts/fuzz.sh [st run options]   e.g. scripts/fuzz.sh --include-path-regex '^/api/v1/tasks'
set -euo pipefail
cd "$(dirname "$0")/.."
source .data/env
target=${CARGO_TARGET_DIR:-$PWD/target}
gad="$target/debug/gad"
examples=${FUZZ_EXAMPLES:-30}
cargo build --locked -q --bin gad

venv="$target/fuzz-venv"
[[ -x $venv/bin/st ]] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q schemathesis==4.32.5; }

admin_url=${DATABASE_URL%/*}/postgres
scratch="gad_fuzz_$(date +%s%N)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
psql "$admin_url" -qc "CREATE DATABASE $scratch" >/dev/null
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" >/dev/null
}
trap cleanup EXIT

export GAD_ENV=test DATABASE_URL="${DATABASE_URL%/*}/$scratch" GAD_BIND="127.0.0.1:$port"
export GAD_JWT_SECRET=fuzz-signing-key-that-is-long-enough-for-hs256 REDIS_URL=
# Linking codes need the bot's name for their deep link (no token: the bot itself stays off).
export TELEGRAM_BOT_USERNAME=gad_fuzz_bot
# The fuzzer sends thousands of requests from one address within minutes.
export GAD_RATE_LIMIT_GENERAL=10000000 GAD_RATE_LIMIT_LOGIN=10000000 GAD__AUTH__ACCESS_TOKEN_TTL_S=7200
"$gad" migrate >/dev/null 2>&1
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24)
GAD_ADMIN_PASSWORD=$password "$gad" create-admin --email fuzz@gad.local >/dev/null 2>&1
RUST_LOG=error "$gad" serve >"$target/fuzz-server.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fsS "$base/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
token=$(curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"fuzz@gad.local\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
admin_id=$(curl -fsS "$base/api/v1/auth/me" -H "Authorization: Bearer $token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# The rules no schema can state (a field against another, rows that must exist) are applied to
# the generated valid cases by scripts/fuzz_hooks.py, which reads the API as this admin.
export SCHEMATHESIS_HOOKS=scripts/fuzz_hooks.py FUZZ_BASE=$base FUZZ_TOKEN=$token FUZZ_ADMIN_ID=$admin_id
# Logging out would revoke the token every later case relies on; the WebSocket upgrade is not
# plain HTTP; the Telegram webhook is not served while the bot is off, as it is here (it answers
# 404 whatever the request). Each has its own tests.
"$venv/bin/st" run "$base/api/v1/openapi.json" \
    --checks all \
    --header "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --exclude-path /api/v1/auth/logout \
    --exclude-path /ws/connect \
    --exclude-path /telegram/webhook \
    --seed "${FUZZ_SEED:-1}" \
    --no-color \
    "$@"
