#!/usr/bin/env bash
# Backs up GAD's database: a compressed custom-format dump (pg_dump -Fc), verified by reading it
# back whole, with a SHA-256 checksum beside it; then deletes this script's backups older than the
# retention. Prints the path of the dump it wrote on standard output, everything else on stderr.
#
#   DATABASE_URL=postgres://… deploy/backup.sh [--keep-days N] [DIR]
#
# DIR: the argument, else BACKUP_DIR. Retention: --keep-days, else BACKUP_KEEP_DAYS, else 14.
# Exits 0 only for a complete dump of a database that holds tables; 1 when the database is
# unreachable, holds nothing, or the dump is empty or cannot be read back; 2 on bad usage.
# Needs pg_dump, pg_restore and psql of the server's major version or newer, and sha256sum.
set -euo pipefail
# Dumps hold personal data: readable by their owner only.
umask 077

usage() {
    echo "usage: DATABASE_URL=postgres://… $0 [--keep-days N] [DIR]   (DIR defaults to \$BACKUP_DIR)" >&2
    exit 2
}
fail() {
    echo "backup: $*" >&2
    exit 1
}

keep_days=${BACKUP_KEEP_DAYS:-14}
dir=${BACKUP_DIR:-}
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage ;;
        --keep-days) [[ $# -ge 2 ]] || usage; keep_days=$2; shift 2 ;;
        -*) usage ;;
        *) dir=$1; shift; [[ $# -eq 0 ]] || usage ;;
    esac
done
[[ -n $dir ]] || usage
[[ $keep_days =~ ^[0-9]+$ && $keep_days -ge 1 ]] || { echo "backup: --keep-days must be a whole number of days, at least 1" >&2; usage; }
[[ -n ${DATABASE_URL:-} ]] || { echo "backup: DATABASE_URL is not set" >&2; usage; }
for tool in pg_dump pg_restore psql sha256sum; do
    command -v "$tool" >/dev/null || fail "$tool is required"
done
mkdir -p "$dir"

# Refuse early, with a clear reason, rather than write a dump of nothing. The URL is never
# printed: it holds the password.
tables=$(psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c \
    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')" 2>/dev/null) \
    || fail "the database is unreachable (check DATABASE_URL and that the server accepts connections)"
[[ $tables -gt 0 ]] || fail "the database has no tables: refusing to write an empty backup"

name="gad-$(date -u +%Y%m%dT%H%M%SZ).dump"
dump="$dir/$name"
partial="$dump.partial"
trap 'rm -f "$partial"' EXIT

echo "backup: dumping $tables tables" >&2
pg_dump --format=custom --compress=6 --no-password --file="$partial" "$DATABASE_URL" \
    || fail "pg_dump failed"

# A dump is complete only if it can be read back whole: the table of contents lists the tables'
# data and the archive reads to its end (a truncated file fails here).
[[ -s $partial ]] || fail "pg_dump wrote an empty file"
contents=$(pg_restore --list "$partial" 2>/dev/null) || fail "the dump cannot be read back (truncated or corrupt)"
data_entries=$(grep -c ' TABLE DATA ' <<<"$contents" || true)
[[ $data_entries -gt 0 ]] || fail "the dump holds no table data"
pg_restore --file=/dev/null "$partial" 2>/dev/null || fail "the dump cannot be read back whole (truncated or corrupt)"

(cd "$dir" && sha256sum "$name.partial" | sed 's/\.partial$//' >"$name.sha256.partial")
mv "$dir/$name.sha256.partial" "$dir/$name.sha256"
mv "$partial" "$dump"
echo "backup: $dump ($(du -h "$dump" | cut -f1), $data_entries tables with data, checksum in $name.sha256)" >&2

# Retention: only this script's files, only once the new backup is safely in place.
find "$dir" -maxdepth 1 -type f \( -name 'gad-*.dump' -o -name 'gad-*.dump.sha256' \) -mtime "+$((keep_days - 1))" \
    -print -delete | sed 's/^/backup: removed (older than '"$keep_days"' days) /' >&2

echo "$dump"
