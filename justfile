# GAD's tasks. `just run` serves GAD locally; `just test` runs every test. Both bring up
# PostgreSQL+PostGIS and Redis first (scripts/services.sh).

set shell := ["bash", "-euo", "pipefail", "-c"]

target := env("CARGO_TARGET_DIR", justfile_directory() / "target")
gad := target / "debug" / "gad"

# List the recipes.
default:
    @just --list

# Make PostgreSQL+PostGIS and Redis reachable and record their URLs in .data/env.
services:
    @scripts/services.sh

# Serve GAD on http://127.0.0.1:8080 (docs at /docs), migrated and with a local admin.
run: services
    #!/usr/bin/env bash
    set -euo pipefail
    source .data/env
    cargo build --locked --bin gad
    {{gad}} migrate
    email=admin@gad.local
    if [[ $(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM users WHERE email = '$email'") == 0 ]]; then
        password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24)
        GAD_ADMIN_PASSWORD=$password {{gad}} create-admin --email "$email"
        printf '\nLocal admin (shown only now): %s / %s\n\n' "$email" "$password"
    else
        echo "Local admin $email exists (its password was shown when it was created)."
    fi
    echo "GAD: http://${GAD_BIND:-127.0.0.1:8080}  (docs: /docs, metrics: /metrics)"
    GAD_ENV=${GAD_ENV:-local} exec {{gad}} serve

# Run every test against real PostgreSQL+PostGIS and Redis; ends with the totals.
test: services
    #!/usr/bin/env bash
    set -euo pipefail
    source .data/env
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # Every test binary runs even when one fails, so that one red binary hides no other.
    status=0
    cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
    awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
    exit "$status"

# Format the code.
fmt:
    cargo fmt --all

# Formatting, clippy, the dependency direction, schema drift and the OpenAPI document.
lint: services
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    just check-domain-independence
    just check-schema
    just openapi

# The domain must not depend on infrastructure, nor adapters on each other (SPEC §1).
check-domain-independence:
    #!/usr/bin/env bash
    set -euo pipefail
    for crate in diesel diesel-async actix-web actix-ws redis deadpool-redis reqwest tokio-postgres; do
        if out=$(cargo tree --locked -p gad-domain -e normal -i "$crate" 2>&1); then
            echo "gad-domain depends on $crate:"; echo "$out"; exit 1
        elif ! grep -q "did not match any packages" <<<"$out"; then
            echo "$out"; exit 1
        fi
    done
    echo "gad-domain depends on no infrastructure crate"
    # Adapters depend on the domain only; the app alone sees them all.
    for crate in gad-pg gad-redis gad-telegram gad-http gad-ws; do
        others=$(cargo tree --locked -p "$crate" -e normal --depth 1 --prefix none | grep '^gad-' | grep -v "^$crate v" | grep -v '^gad-domain v' || true)
        if [[ -n $others ]]; then
            echo "$crate may depend on gad-domain only, not on:"; echo "$others"; exit 1
        fi
    done
    echo "every adapter depends on the domain only"

# Regenerate crates/pg/src/schema.rs from the migrations.
schema: services
    just _print-schema crates/pg/src/schema.rs

# Fail when crates/pg/src/schema.rs differs from what the migrations produce.
check-schema:
    #!/usr/bin/env bash
    set -euo pipefail
    generated=$(mktemp)
    just _print-schema "$generated"
    diff -u crates/pg/src/schema.rs "$generated" || { echo "schema.rs is stale: run just schema"; exit 1; }
    echo "schema.rs matches the migrations"

_print-schema out: _diesel-cli
    #!/usr/bin/env bash
    set -euo pipefail
    source .data/env
    scratch="gad_schema_$(date +%s%N)"
    admin=$TEST_DATABASE_URL
    psql "$admin" -qc "CREATE DATABASE $scratch" >/dev/null
    trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" >/dev/null' EXIT
    url="${admin%/*}/$scratch"
    diesel migration run --database-url "$url" >/dev/null
    diesel print-schema --database-url "$url" > "{{out}}"

_diesel-cli:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v diesel >/dev/null && exit 0
    if ! dpkg -s libpq-dev >/dev/null 2>&1; then
        if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && apt-get install -y -qq libpq-dev; else echo "run: sudo apt-get install -y libpq-dev"; exit 1; fi
    fi
    cargo install --locked diesel_cli --version 2.3.14 --no-default-features --features postgres

# Rewrite the generated tables of docs/GDPR_DATA_MAPPING.md from crates/pg/src/privacy/data_map.rs.
data-map:
    GAD_UPDATE_DATA_MAP=1 cargo test --locked -q -p gad-pg --lib -- the_documented_map_is_the_map_in_code

# Apply pending migrations to DATABASE_URL.
migrate: services
    source .data/env && cargo run --locked -q --bin gad -- migrate

# Write the OpenAPI document to target/openapi.json and validate it as OpenAPI 3.1.
openapi:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p "{{target}}"
    cargo run --locked -q --bin gad -- openapi > "{{target}}/openapi.json"
    venv="{{target}}/openapi-venv"
    [[ -x $venv/bin/openapi-spec-validator ]] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q openapi-spec-validator==0.9.0; }
    "$venv/bin/openapi-spec-validator" --schema 3.1 "{{target}}/openapi.json"

# Advisories (offline snapshot of ../shared/advisory-db), licences and sources.
deny:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-deny >/dev/null || cargo install --locked cargo-deny --version 0.20.2
    ADVISORY_DB_CACHE="$PWD/target/advisory-dbs" ../shared/tools/advisory-db >/dev/null
    cargo fetch --locked
    cargo deny --offline check
