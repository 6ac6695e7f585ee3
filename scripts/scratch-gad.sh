# shellcheck shell=bash
# Sourced by scripts that need a GAD of their own for one run (the contract fuzzer, the local load
# run): a scratch database and Redis key prefix, an administrator with a random password, request
# limits raised so that a run measures the service rather than the limiter; all removed on exit.
# (deploy/checks/gad-instance.sh is the deploy checks' own: a metrics listener, no Redis.)
#   source scripts/scratch-gad.sh
#   scratch_gad <gad-binary> <database-prefix> <admin-email> <server-log> [RUST_LOG level]
# Sets `base` (the URL), `password` (the administrator's) and `server` (the pid). The caller
# exports anything else the server needs (GAD_JWT_SECRET, REDIS_URL, …) before calling.

scratch_gad() {
    local gad=$1 prefix=$2 email=$3 log=$4 level=${5:-warn} port
    scratch_admin_url=${DATABASE_URL%/*}/postgres
    scratch_database="${prefix}_$(date +%s%N)"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    psql "$scratch_admin_url" -qc "CREATE DATABASE $scratch_database" >/dev/null
    server=
    trap scratch_gad_cleanup EXIT
    export GAD_ENV=test DATABASE_URL="${DATABASE_URL%/*}/$scratch_database" GAD_BIND="127.0.0.1:$port"
    export GAD__REDIS__KEY_PREFIX="$scratch_database:" GAD_RATE_LIMIT_GENERAL=10000000 GAD_RATE_LIMIT_LOGIN=10000000
    "$gad" migrate >/dev/null 2>&1
    password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24)
    GAD_ADMIN_PASSWORD=$password "$gad" create-admin --email "$email" >/dev/null 2>&1
    mkdir -p "$(dirname "$log")"
    RUST_LOG=$level "$gad" serve >"$log" 2>&1 &
    server=$!
    base="http://127.0.0.1:$port"
    for _ in $(seq 150); do
        curl -fsS "$base/health/ready" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "gad did not become ready; its log: $log" >&2
    return 1
}

# shellcheck disable=SC2317  # run by the EXIT trap
scratch_gad_cleanup() {
    if [[ -n ${server:-} ]]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
    psql "$scratch_admin_url" -qc "DROP DATABASE IF EXISTS $scratch_database WITH (FORCE)" >/dev/null
}
