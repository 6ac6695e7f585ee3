#!/usr/bin/env bash
# The restore drill: GAD writes real data (the smoke test's login, task round trip and WebSocket
# event, plus an administrator), deploy/backup.sh dumps the database, deploy/restore.sh restores
# the dump into a new database, and every table's row count and every table's checksum must match.
# Then the failures: the backup refuses an unreachable database, an empty database and a dump
# that is cut short, the restore refuses an altered dump and a non-empty target, retention
# removes only old backups, and no output shows the database password.
#   GAD_BIN=… TEST_DATABASE_URL=… deploy/checks/restore-drill.sh   (just restore-drill)
set -euo pipefail
cd "$(dirname "$0")"
deploy=$(cd .. && pwd)
source ./gad-instance.sh

start_gad drill
check "the smoke test writes data through GAD" "$deploy/smoke-test.sh" "$GAD_URL"
stop_gad

# The URL's password must never be printed. Without one (a server that trusts local connections)
# the drill adds one, which such a server ignores.
read -r source_url secret < <(python3 -c '
import sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
if url.password:
    print(sys.argv[1], url.password)
else:
    netloc = f"{url.username}:drill-secret-pw@{url.hostname}" + (f":{url.port}" if url.port else "")
    print(url._replace(netloc=netloc).geturl(), "drill-secret-pw")
' "$GAD_DB_URL")
backups=$checks_work/backups
mkdir -p "$backups"

DATABASE_URL=$source_url "$deploy/backup.sh" "$backups" >"$checks_work/backup.path" 2>"$checks_work/backup.log"
dump=$(cat "$checks_work/backup.path")
check "backup.sh prints the path of a dump it wrote, with its checksum" \
    test -s "$dump" -a -s "$dump.sha256"
check "the dump is readable by its owner only" test "$(stat -c %a "$dump")" = 600

restored_url=$(scratch_database restored)
check "restore.sh restores the dump into a new database" \
    env DATABASE_URL="$restored_url" "$deploy/restore.sh" "$dump"

# Every table's row count and checksum (md5 of its rows in a stable order), in both databases.
fingerprint() {
    local url=$1 table
    for table in $(psql "$url" -XAtq -c "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
                   WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"); do
        psql "$url" -XAtq -c "SELECT '$table', count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))
                              FROM $table AS t"
    done
}
fingerprint "$GAD_DB_URL" >"$checks_work/source.txt"
fingerprint "$restored_url" >"$checks_work/restored.txt"
check "every table has the same row count and checksum after the restore" \
    diff -u "$checks_work/source.txt" "$checks_work/restored.txt"
for table in users tasks events audit_events; do
    if grep -q "^public\.$table|" "$checks_work/source.txt"; then
        check "the drill's data is not trivial: $table has rows" \
            grep -Eq "^public\.$table\|[1-9]" "$checks_work/source.txt"
    fi
done
echo "      $(wc -l <"$checks_work/source.txt") tables compared, $(awk -F'|' '{ rows += $2 } END { print rows }' "$checks_work/source.txt") rows"

# Failures.
refuses() { # refuses EXPECTED_TEXT COMMAND… : exits non-zero and says why
    local expected=$1
    shift
    if "$@" >"$checks_work/refused.out" 2>&1; then
        echo "succeeded:"; cat "$checks_work/refused.out"; return 1
    fi
    grep -q "$expected" "$checks_work/refused.out" || { cat "$checks_work/refused.out"; return 1; }
}
check "backup.sh refuses an unreachable database" \
    refuses unreachable env DATABASE_URL=postgres://postgres@127.0.0.1:1/gad "$deploy/backup.sh" "$backups/none"
check "backup.sh refuses an empty database" \
    refuses "no tables" env DATABASE_URL="$(scratch_database empty)" "$deploy/backup.sh" "$backups/none"
# A pg_dump that stops half-way but reports success.
mkdir -p "$checks_work/bin"
cat >"$checks_work/bin/pg_dump" <<'FAKE'
#!/usr/bin/env bash
file=
for argument in "$@"; do [[ $argument == --file=* ]] && file=${argument#--file=}; done
real=$(PATH=${PATH#*:} command -v pg_dump)
"$real" "$@" && truncate -s "$(( $(stat -c %s "$file") / 2 ))" "$file"
FAKE
chmod +x "$checks_work/bin/pg_dump"
check "backup.sh refuses a dump cut short" \
    refuses "cannot be read back" env PATH="$checks_work/bin:$PATH" DATABASE_URL="$GAD_DB_URL" "$deploy/backup.sh" "$backups/cut"
check "backup.sh leaves no file behind when it fails" test -z "$(ls -A "$backups/cut")"
cp "$dump" "$checks_work/altered.dump"
cp "$dump.sha256" "$checks_work/altered.dump.sha256"
sed -i "s/$(basename "$dump")/altered.dump/" "$checks_work/altered.dump.sha256"
truncate -s -100 "$checks_work/altered.dump"
check "restore.sh refuses a dump that does not match its checksum" \
    refuses "does not match its checksum" env DATABASE_URL="$(scratch_database altered)" "$deploy/restore.sh" "$checks_work/altered.dump"
check "restore.sh refuses a target that already has tables" \
    refuses "already has" env DATABASE_URL="$restored_url" "$deploy/restore.sh" "$dump"
check "backup.sh and restore.sh refuse bad usage with exit 2" \
    bash -c "'$deploy/backup.sh' --keep-days x /tmp; [[ \$? == 2 ]] && env -u DATABASE_URL '$deploy/restore.sh' f; [[ \$? == 2 ]] && '$deploy/restore.sh'; [[ \$? == 2 ]]"

# Retention: backups older than --keep-days go, newer ones and other files stay.
touch -d '20 days ago' "$backups/gad-20000101T000000Z.dump" "$backups/gad-20000101T000000Z.dump.sha256" "$backups/notes.txt"
touch -d '2 days ago' "$backups/gad-20000102T000000Z.dump"
DATABASE_URL=$GAD_DB_URL "$deploy/backup.sh" --keep-days 14 "$backups" >/dev/null 2>>"$checks_work/backup.log"
check "retention removes this script's backups older than 14 days only" \
    bash -c "cd '$backups' && [[ ! -e gad-20000101T000000Z.dump && ! -e gad-20000101T000000Z.dump.sha256 && -e gad-20000102T000000Z.dump && -e notes.txt ]]"
check "no output shows the database password" \
    bash -c "! grep -rqF -- '$secret' '$checks_work'/*.log '$checks_work'/*.out '$checks_work/backup.path'"

finish_checks
