#!/usr/bin/env bash
# Makes PostgreSQL (with PostGIS) and Redis available to `just run` and `just test`, then writes
# the variables that reach them to .data/env, which the recipes source.
#
# It uses the servers at DATABASE_URL / REDIS_URL when they answer (defaults: the standard local
# ports). Otherwise it starts project-local instances under .data/ from the installed server
# binaries (PostgreSQL as the `postgres` user: it refuses to run as root). Missing packages are
# installed with apt when running as root; otherwise the exact command is printed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$root/.data"
mkdir -p "$data"

database_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/gad}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
local_pg_port=54329
local_redis_port=63799

say() { echo "services: $*" >&2; }

apt_updated=false
apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        say "missing packages; install them with: sudo apt-get install -y $*"
        exit 1
    fi
    if [[ $apt_updated == false ]]; then
        apt-get update -qq >&2
        apt_updated=true
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# The same server with the `postgres` maintenance database, for administration.
admin_url_of() {
    local url=${1%%\?*}
    echo "${url%/*}/postgres"
}

database_name_of() {
    local url=${1%%\?*}
    echo "${url##*/}"
}

pg_answers() {
    psql "$(admin_url_of "$1")" -qtAc 'SELECT 1' >/dev/null 2>&1
}

ensure_psql() {
    command -v psql >/dev/null || apt_install postgresql-client
}

# PostGIS for the server's major version, when that server runs on this machine.
ensure_postgis() {
    local admin=$1
    local available
    available=$(psql "$admin" -qtAc "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")
    if [[ $available == 0 ]]; then
        local major
        major=$(psql "$admin" -qtAc "SELECT current_setting('server_version_num')::int / 10000")
        apt_install "postgresql-$major-postgis-3"
    fi
}

start_local_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z $bin ]]; then
        apt_install postgresql postgresql-common
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    local major
    major=$(basename "$(dirname "$bin")")
    [[ -f /usr/share/postgresql/$major/extension/postgis.control ]] || apt_install "postgresql-$major-postgis-3"

    local pgdata="$data/postgres"
    local run=()
    if [[ $(id -u) -eq 0 ]]; then
        run=(runuser -u postgres --)
        mkdir -p "$pgdata"
        chown postgres "$pgdata"
        chmod 700 "$pgdata"
    fi
    if [[ ! -f $pgdata/PG_VERSION ]]; then
        say "initialising a local PostgreSQL $major in $pgdata"
        "${run[@]}" "$bin/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 >/dev/null
    fi
    say "starting the local PostgreSQL on 127.0.0.1:$local_pg_port"
    "${run[@]}" "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w start \
        -o "-p $local_pg_port -c listen_addresses=127.0.0.1 -k /tmp" >/dev/null
    database_url="postgres://postgres@127.0.0.1:$local_pg_port/$(database_name_of "$database_url")"
}

redis_answers() {
    local hostport=${1#redis://}
    hostport=${hostport##*@}
    hostport=${hostport%%/*}
    local host=${hostport%:*} port=${hostport##*:}
    [[ $host == "$hostport" ]] && port=6379
    local reply=""
    if { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
        printf 'PING\r\n' >&3
        read -r -t 2 reply <&3 || true
        exec 3<&-
    fi
    [[ $reply == +PONG* ]]
}

start_local_redis() {
    command -v redis-server >/dev/null || apt_install redis-server
    mkdir -p "$data/redis"
    say "starting a local Redis on 127.0.0.1:$local_redis_port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$local_redis_port" --save "" --appendonly no \
        --dir "$data/redis" --logfile "$data/redis/server.log" --pidfile "$data/redis/server.pid"
    redis_url="redis://127.0.0.1:$local_redis_port"
    for _ in $(seq 50); do
        redis_answers "$redis_url" && return 0
        sleep 0.1
    done
    say "the local Redis did not answer; see $data/redis/server.log"
    exit 1
}

ensure_psql
if ! pg_answers "$database_url"; then
    local_url="postgres://postgres@127.0.0.1:$local_pg_port/$(database_name_of "$database_url")"
    if pg_answers "$local_url"; then
        database_url=$local_url
    else
        say "no PostgreSQL answers at $(admin_url_of "$database_url")"
        start_local_postgres
    fi
fi
admin_url=$(admin_url_of "$database_url")
ensure_postgis "$admin_url"
database=$(database_name_of "$database_url")
if [[ $(psql "$admin_url" -qtAc "SELECT count(*) FROM pg_database WHERE datname = '$database'") == 0 ]]; then
    psql "$admin_url" -qc "CREATE DATABASE \"$database\"" >/dev/null
    say "created database $database"
fi

if ! redis_answers "$redis_url"; then
    if redis_answers "redis://127.0.0.1:$local_redis_port"; then
        redis_url="redis://127.0.0.1:$local_redis_port"
    else
        say "no Redis answers at $redis_url"
        start_local_redis
    fi
fi

cat >"$data/env" <<ENV
export DATABASE_URL='$database_url'
export TEST_DATABASE_URL='$admin_url'
export REDIS_URL='$redis_url'
ENV
say "PostgreSQL+PostGIS at $database_url, Redis at $redis_url"
