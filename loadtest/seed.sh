#!/usr/bin/env bash
# Prepares the local database for the dispatch benchmarks: migrates, creates the operator
# bench@example.org (password benchmark-password-1) and loads loadtest/seed.sql.
#   loadtest/seed.sh        (after `just services`; uses .data/env)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/.data/env"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --locked --bin gad --manifest-path "$root/Cargo.toml"
gad="$target/release/gad"
"$gad" migrate
if [[ $(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM users WHERE email = 'bench@example.org'") == 0 ]]; then
    GAD_ADMIN_PASSWORD=benchmark-password-1 "$gad" create-admin --email bench@example.org
fi
psql "$DATABASE_URL" -qc "UPDATE users SET role = 'operator' WHERE email = 'bench@example.org'"
psql "$DATABASE_URL" -q -f "$root/loadtest/seed.sql"
# Statistics for the planner even where autovacuum is off.
psql "$DATABASE_URL" -qc "VACUUM ANALYZE"
psql "$DATABASE_URL" -qtAc "SELECT count(*) || ' tasks, ' || (SELECT count(*) FROM officers) || ' officers' FROM tasks"
