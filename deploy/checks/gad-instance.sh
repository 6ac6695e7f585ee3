# shellcheck shell=bash
# Sourced by the checks in this directory: runs a real GAD on a scratch database of the local
# PostgreSQL, with a smoke-test administrator, and cleans everything up on exit.
#
# Needs GAD_BIN (the gad binary) and TEST_DATABASE_URL (a database to administer the server from:
# scripts/services.sh writes it to .data/env). After `start_gad NAME`:
#   GAD_URL, GAD_METRICS_URL     the API and the private metrics listener
#   GAD_DB_URL                   the scratch database (migrated)
#   SMOKE_EMAIL, SMOKE_PASSWORD  an administrator for deploy/smoke-test.sh
# `scratch_database NAME` creates another empty database, dropped on exit too.

: "${GAD_BIN:?GAD_BIN must name the gad binary}"
: "${TEST_DATABASE_URL:?TEST_DATABASE_URL must be set (source .data/env)}"

scratch_databases=()
gad_pid=
checks_work=$(mktemp -d)

stop_gad() {
    if [[ -n $gad_pid ]]; then
        kill "$gad_pid" 2>/dev/null || true
        wait "$gad_pid" 2>/dev/null || true
        gad_pid=
    fi
}

cleanup_checks() {
    stop_gad
    for database in "${scratch_databases[@]}"; do
        psql "$TEST_DATABASE_URL" -XqAt -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$checks_work"
}
trap cleanup_checks EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Creates an empty database and prints its URL.
scratch_database() {
    local database
    database="gad_ops_$1_$(date +%s%N)"
    psql "$TEST_DATABASE_URL" -XqAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $database" >/dev/null
    scratch_databases+=("$database")
    echo "${TEST_DATABASE_URL%/*}/$database"
}

start_gad() {
    local name=$1 api_port metrics_port
    GAD_DB_URL=$(scratch_database "$name")
    DATABASE_URL=$GAD_DB_URL "$GAD_BIN" migrate >"$checks_work/setup.log" 2>&1 \
        || { cat "$checks_work/setup.log" >&2; exit 1; }
    SMOKE_EMAIL="smoke-$name@gad.local"
    SMOKE_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    DATABASE_URL=$GAD_DB_URL GAD_ADMIN_PASSWORD=$SMOKE_PASSWORD "$GAD_BIN" create-admin --email "$SMOKE_EMAIL" \
        >"$checks_work/setup.log" 2>&1 || { cat "$checks_work/setup.log" >&2; exit 1; }
    api_port=$(free_port)
    metrics_port=$(free_port)
    GAD_URL="http://127.0.0.1:$api_port"
    GAD_METRICS_URL="http://127.0.0.1:$metrics_port/metrics"
    # Single-instance mode (no REDIS_URL): nothing shared with the test suite's Redis keys.
    env -u REDIS_URL GAD_ENV=local DATABASE_URL="$GAD_DB_URL" GAD_BIND="127.0.0.1:$api_port" \
        GAD_METRICS_BIND="127.0.0.1:$metrics_port" RUST_LOG=warn "$GAD_BIN" serve >"$checks_work/gad.log" 2>&1 &
    gad_pid=$!
    # Wait (bounded) for the metrics listener: the API itself gets no request before the checks.
    for _ in $(seq 150); do
        curl -sf -o /dev/null "$GAD_METRICS_URL" && break
        kill -0 "$gad_pid" 2>/dev/null || { cat "$checks_work/gad.log" >&2; echo "gad exited" >&2; exit 1; }
        sleep 0.2
    done
    curl -sf -o /dev/null "$GAD_METRICS_URL" || { cat "$checks_work/gad.log" >&2; echo "gad did not start" >&2; exit 1; }
    export GAD_URL GAD_METRICS_URL GAD_DB_URL SMOKE_EMAIL SMOKE_PASSWORD
}

# Test bookkeeping: `check DESCRIPTION COMMAND…` runs the command and records ok / FAIL.
checks_passed=0
checks_failed=0
check() {
    local description=$1
    shift
    if "$@" >"$checks_work/check.out" 2>&1; then
        printf 'ok    %s\n' "$description"
        checks_passed=$((checks_passed + 1))
    else
        printf 'FAIL  %s\n' "$description"
        sed 's/^/      /' "$checks_work/check.out" | tail -n 20
        checks_failed=$((checks_failed + 1))
    fi
}
finish_checks() {
    echo "$checks_passed passed, $checks_failed failed"
    [[ $checks_failed -eq 0 ]]
}
