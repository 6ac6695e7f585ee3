#!/usr/bin/env bash
# Restores a dump written by deploy/backup.sh into the database at DATABASE_URL, after checking
# the dump against its .sha256 file. In one transaction: it all lands or nothing does.
#
#   DATABASE_URL=postgres://…/gad_restored deploy/restore.sh [--clean] FILE
#
# The target must be empty (a new database: createdb, then restore) unless --clean is given,
# which drops and recreates the objects the dump holds. The server needs PostGIS installed.
# Exits 0 when restored; 1 when the checksum does not match, the target is not empty, or
# pg_restore fails; 2 on bad usage. Needs pg_restore, psql and sha256sum.
set -euo pipefail

usage() {
    echo "usage: DATABASE_URL=postgres://… $0 [--clean] FILE   (FILE written by deploy/backup.sh)" >&2
    exit 2
}
fail() {
    echo "restore: $*" >&2
    exit 1
}

clean=()
file=
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage ;;
        --clean) clean=(--clean --if-exists); shift ;;
        -*) usage ;;
        *) [[ -z $file ]] || usage; file=$1; shift ;;
    esac
done
[[ -n $file ]] || usage
[[ -n ${DATABASE_URL:-} ]] || { echo "restore: DATABASE_URL is not set" >&2; usage; }
for tool in pg_restore psql sha256sum; do
    command -v "$tool" >/dev/null || fail "$tool is required"
done
[[ -f $file ]] || fail "no such file: $file"
[[ -f $file.sha256 ]] || fail "no checksum file $file.sha256: refusing to restore an unverified dump"
(cd "$(dirname "$file")" && sha256sum --check --status "$(basename "$file").sha256") \
    || fail "$file does not match its checksum (truncated or altered)"

tables=$(psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c \
    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')" 2>/dev/null) \
    || fail "the target database is unreachable (check DATABASE_URL)"
if [[ $tables -gt 0 && ${#clean[@]} -eq 0 ]]; then
    fail "the target database already has $tables tables: restore into a new database, or pass --clean"
fi

echo "restore: restoring $(basename "$file")" >&2
pg_restore --exit-on-error --single-transaction --no-owner --no-privileges --no-password "${clean[@]}" \
    --dbname="$DATABASE_URL" "$file" || fail "pg_restore failed; nothing was restored"
restored=$(psql "$DATABASE_URL" -XAtq -c \
    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
echo "restore: done, $restored tables" >&2
