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

source scripts/scratch-gad.sh
export GAD_JWT_SECRET=fuzz-signing-key-that-is-long-enough-for-hs256 REDIS_URL=
# Linking codes need the bot's name for their deep link (no token: the bot itself stays off).
export TELEGRAM_BOT_USERNAME=gad_fuzz_bot
# The fuzzer sends thousands of requests from one address within minutes.
export GAD__AUTH__ACCESS_TOKEN_TTL_S=7200
scratch_gad "$gad" gad_fuzz fuzz@gad.local "$target/fuzz-server.log" error
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
