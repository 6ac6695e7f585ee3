#!/usr/bin/env bash
# Runs the load scenarios against a GAD served here for the purpose: a scratch database, a
# Redis key prefix of its own, an admin with a random password, and request limits raised so
# that the run measures capacity rather than the rate limiter. Removes all of it afterwards and
# exits with the runner's status (0 pass, 1 a threshold failed or an event was lost, 2 cannot
# start).
#   loadtest/local.sh [smoke|full] [debug|release] [more runner options…]
# (after `just services`; uses .data/env)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source .data/env
profile=${1:-smoke}
build=${2:-debug}
shift $(($# < 2 ? $# : 2))
target=${CARGO_TARGET_DIR:-$root/target}
flags=()
[[ $build == release ]] && flags=(--release)
cargo build --locked -q --bin gad "${flags[@]}"
gad="$target/$build/gad"

admin_url=${DATABASE_URL%/*}/postgres
run="gad_load_$(date +%s%N)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
psql "$admin_url" -qc "CREATE DATABASE $run" >/dev/null
server=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    if [[ -n $server ]]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $run WITH (FORCE)" >/dev/null
}
trap cleanup EXIT

export GAD_ENV=test DATABASE_URL="${DATABASE_URL%/*}/$run" GAD_BIND="127.0.0.1:$port" GAD__REDIS__KEY_PREFIX="$run:"
GAD_JWT_SECRET="load-signing-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GAD_JWT_SECRET
export GAD_RATE_LIMIT_GENERAL=10000000 GAD_RATE_LIMIT_LOGIN=10000000
"$gad" migrate >/dev/null 2>&1
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24)
GAD_ADMIN_PASSWORD=$password "$gad" create-admin --email load@gad.local >/dev/null
log="$target/loadtest/server-$profile.log"
mkdir -p "$(dirname "$log")"
RUST_LOG=warn "$gad" serve >"$log" 2>&1 &
server=$!
for _ in $(seq 150); do curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
status=0
GAD_LOAD_EMAIL=load@gad.local GAD_LOAD_PASSWORD=$password \
    loadtest/run --base "http://127.0.0.1:$port" --profile "$profile" "$@" || status=$?
exit "$status"
