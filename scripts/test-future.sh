#!/usr/bin/env bash
# Runs every test binary with the clock pushed forward (default +400 days), to prove that no test
# depends on the day it runs. The tests and the `gad` processes they start see the shifted time
# through libfaketime, and so does a PostgreSQL started for the run (its now() moves with them).
# Redis keeps the real time: libfaketime clashes with its allocator, and GAD only gives Redis
# relative expiries.
#   scripts/test-future.sh [offset]      e.g. +400d (default), -400d, +3y
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
offset=${1:-+400d}
port=54400
pgdata="$root/.data/future-postgres"
faketime_lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1

say() { echo "test-future: $*" >&2; }

if [[ ! -f $faketime_lib ]]; then
    if [[ $(id -u) -ne 0 ]]; then say "install libfaketime: sudo apt-get install -y faketime"; exit 1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >&2
fi
"$root/scripts/services.sh" # PostGIS and Redis, as for `just test`
source "$root/.data/env"

bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
run=()
if [[ $(id -u) -eq 0 ]]; then run=(runuser -u postgres --); fi
mkdir -p "$pgdata"
[[ $(id -u) -eq 0 ]] && chown postgres "$pgdata" && chmod 700 "$pgdata"
if [[ ! -f $pgdata/PG_VERSION ]]; then
    "${run[@]}" "$bin/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 >/dev/null
fi
say "starting PostgreSQL on 127.0.0.1:$port at now $offset"
"${run[@]}" env LD_PRELOAD="$faketime_lib" FAKETIME="$offset" "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
    start -o "-p $port -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=300" >/dev/null
trap '"${run[@]}" "$bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null' EXIT
server_now=$(psql "postgres://postgres@127.0.0.1:$port/postgres" -qtAc 'SELECT now()')
say "PostgreSQL's now(): $server_now (real: $(date -u '+%F %T'))"

# Build with the real clock (cargo compares file times), then run each binary in the future.
binaries=$(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
status=0
passed=0
failed=0
for binary in $binaries; do
    log=$(mktemp)
    LD_PRELOAD="$faketime_lib" FAKETIME="$offset" TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" \
        DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" "$binary" 2>&1 | tee "$log" || status=1
    read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
    rm -f "$log"
done
say "clock $offset: $passed passed, $failed failed"
exit "$status"
