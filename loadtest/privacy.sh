#!/usr/bin/env bash
# The privacy benchmarks of issue 11, on a database of their own (dropped afterwards):
#   1. export of an officer with N positions (default 100,000): time and the server's peak memory
#      growth during it (VmHWM after resetting it through /proc/<pid>/clear_refs);
#   2. erasure of that officer while another officer reports positions through pgbench (2 clients):
#      the erasure's time, the longest write of the other officer during the run, and how many of
#      its writes waited longer than 50 ms for a lock (they run with lock_timeout=50ms, so such a
#      write fails and is counted);
#   3. `gad purge` of M expired positions (default 1,000,000) while the other officer keeps
#      reporting: the purge's time, the longest concurrent write, and the writes that waited
#      longer than 100 ms for a lock (lock_timeout=100ms).
# Before each concurrent phase the same pgbench runs alone for a baseline: on a shared machine the
# longest write includes CPU and disk contention, which the lock counts exclude.
#   loadtest/privacy.sh [positions] [expired-positions]
# GAD_BIN picks the binary (default: the release build if there is one, else the debug build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/.data/env"
positions=${1:-100000}
expired=${2:-1000000}
target=${CARGO_TARGET_DIR:-$root/target}
gad=${GAD_BIN:-$([[ -x $target/release/gad ]] && echo "$target/release/gad" || echo "$target/debug/gad")}
db=gad_privacy_bench
admin_url=$TEST_DATABASE_URL
url="${admin_url%/*}/$db"
port=18931
base=http://127.0.0.1:$port
work=$(mktemp -d)
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null

export GAD_ENV=local DATABASE_URL=$url GAD_BIND=127.0.0.1:$port REDIS_URL= RUST_LOG=warn \
    GAD_RATE_LIMIT_GENERAL=1000000 GAD_RATE_LIMIT_LOGIN=100000 GAD__RETENTION__PURGE_INTERVAL_S=0
password=bench-password-long-enough
echo "binary: $gad"
"$gad" migrate 2>/dev/null
GAD_ADMIN_PASSWORD=$password "$gad" create-admin --email admin@bench.example 2>/dev/null
"$gad" serve 2>"$work/serve.log" &
server=$!
until curl -fs "$base/health/ready" >/dev/null; do sleep 0.2; done

login() {
    curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$1\",\"password\":\"$password\"}" | jq -r .access_token
}
call() { # method path token [body]
    curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"}
}
admin=$(login admin@bench.example)
officer_profile() { # email badge → officer id; the user consents to tracking
    local user
    user=$(call POST /api/v1/users "$admin" "{\"email\":\"$1\",\"password\":\"$password\",\"first_name\":\"Bench\",\"last_name\":\"Officer\",\"role\":\"officer\",\"phone\":\"+34600000000\"}" | jq -r .id)
    call POST /api/v1/officers "$admin" "{\"user_id\":\"$user\",\"badge_number\":\"$2\",\"availability\":\"available\"}" | jq -r .id
    local token
    token=$(login "$1")
    call POST "/api/v1/users/$user/consents" "$token" '{"consent_type":"location_tracking","granted":true,"policy_version":"1"}' >/dev/null
}
subject_officer=$(officer_profile subject@bench.example BENCH-1)
subject_user=$(psql "$url" -qtAc "SELECT user_id FROM officers WHERE id = '$subject_officer'")
other_officer=$(officer_profile other@bench.example BENCH-2)
subject=$(login subject@bench.example)

psql "$url" -qc "INSERT INTO officer_locations (officer_id, location, accuracy_m, recorded_at, received_at)
    SELECT '$subject_officer', ST_SetSRID(ST_MakePoint(-3.7 + n / 1e7, 40.4), 4326)::geography, 5,
           now() - n * interval '1 minute', now() - n * interval '1 minute'
    FROM generate_series(1, $positions) n"
psql "$url" -qc "VACUUM ANALYZE officer_locations"

# Longest transaction (ms) in pgbench logs: the third field is the latency in microseconds.
longest() { cat "$@" | awk '$3 > max { max = $3 } END { printf "%.1f", max / 1000 }'; }
writes() { # seconds prefix lock-timeout → runs the other officer's position reports
    PGOPTIONS="-c lock_timeout=$3" pgbench -n -M prepared -c 2 -j 2 -T "$1" \
        -f "$root/loadtest/pgbench/location-report.sql" -D officer="$other_officer" \
        -l --log-prefix="$work/$2" "$url" >"$work/$2.out" 2>&1 || true
}
# Writes that failed (a lock wait beyond lock_timeout fails the transaction and aborts its client).
lock_waits() { cat "$@" | grep -cE 'lock timeout|aborted' || true; }

echo "load average: $(cut -d" " -f1-3 /proc/loadavg) on $(nproc) cores"
echo "== 1. export of an officer with $positions positions"
echo 5 >"/proc/$server/clear_refs"
rss_before=$(awk '/VmRSS/ { print $2 }' "/proc/$server/status")
timing=$(curl -sS -o "$work/export.json" -w '%{http_code} first byte %{time_starttransfer}s, total %{time_total}s, %{size_download} bytes' \
    -H "Authorization: Bearer $subject" "$base/api/v1/users/$subject_user/data-export")
peak=$(awk '/VmHWM/ { print $2 }' "/proc/$server/status")
rows=$(jq '.tables.officer_locations | length' "$work/export.json")
echo "status $timing; $rows positions in the document"
echo "server memory: RSS before ${rss_before} kB, peak during the export ${peak} kB, growth $(( (peak - rss_before) / 1024 )) MB"

echo "== 2. erasure of that officer while another officer reports positions"
writes 3 baseline-erase 50ms
echo "baseline (alone): longest write $(longest "$work"/baseline-erase.[0-9]*) ms"
writes 8 erase 50ms &
writer=$!
sleep 3
timing=$(curl -sS -o "$work/receipt.json" -w '%{http_code} in %{time_total}s' -X DELETE \
    -H "Authorization: Bearer $admin" "$base/api/v1/users/$subject_user/gdpr-delete")
wait "$writer"
echo "erasure: status $timing; $(jq -c '[.records[] | select(.rows > 0) | {(.table): .rows}] | add' "$work/receipt.json")"
echo "concurrent writes: longest $(longest "$work"/erase.[0-9]*) ms, $(cat "$work"/erase.[0-9]* | wc -l) transactions, $(lock_waits "$work"/erase.out) waited > 50 ms for a lock"

echo "== 3. gad purge of $expired expired positions while another officer reports positions"
psql "$url" -qc "INSERT INTO officer_locations (officer_id, location, accuracy_m, recorded_at, received_at)
    SELECT '$other_officer', ST_SetSRID(ST_MakePoint(-3.7, 40.4), 4326)::geography, 5,
           now() - interval '40 days' - n * interval '1 second', now() - interval '40 days' - n * interval '1 second'
    FROM generate_series(1, $expired) n"
psql "$url" -qc "VACUUM ANALYZE officer_locations"
writes 3 baseline-purge 100ms
echo "baseline (alone): longest write $(longest "$work"/baseline-purge.[0-9]*) ms"
started=$(date +%s.%N)
"$gad" purge >"$work/purge.out" 2>&1 &
purger=$!
slice=0
while kill -0 "$purger" 2>/dev/null; do
    writes 2 "purge-$slice" 100ms
    slice=$((slice + 1))
done
wait "$purger"
finished=$(date +%s.%N)
grep officer_locations "$work/purge.out"
echo "purge: $(echo "$finished - $started" | bc) s; left: $(psql "$url" -qtAc "SELECT count(*) FROM officer_locations WHERE received_at < now() - interval '30 days'") expired rows"
echo "concurrent writes: longest $(longest "$work"/purge-*.[0-9]*) ms, $(cat "$work"/purge-*.[0-9]* | wc -l) transactions, $(lock_waits "$work"/purge-*.out) waited > 100 ms for a lock"
