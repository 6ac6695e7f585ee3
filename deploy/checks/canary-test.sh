#!/usr/bin/env bash
# Tests of the canary procedure's scripts:
# - deploy/canary-check.sh against a fake Prometheus API (fake_prometheus.py) serving chosen
#   values: go when the canary is healthy, no-go for each failed criterion, for no data, for an
#   error answer and for an unreachable Prometheus;
# - deploy/canary.sh and deploy/rollback.sh on a copy of the production env file, with a `docker`
#   that records its calls, the rollback verified by the smoke test against a real GAD.
#   GAD_BIN=… TEST_DATABASE_URL=… deploy/checks/canary-test.sh   (just canary-test)
set -euo pipefail
cd "$(dirname "$0")"
deploy=$(cd .. && pwd)
source ./gad-instance.sh

scenario=$checks_work/scenario.json
python3 fake_prometheus.py "$scenario" "$checks_work/port" &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true; cleanup_checks' EXIT
for _ in $(seq 50); do [[ -s $checks_work/port ]] && break; sleep 0.1; done
prometheus="http://127.0.0.1:$(cat "$checks_work/port")"

# A healthy canary and stable pool; each scenario overrides some answers (first match wins).
healthy='
    ["sum\\(increase\\(http_requests_total\\{pool=\"canary\"", 1500],
    ["status=~\"5..\".*pool=\"canary\"|pool=\"canary\",status=~\"5..\"", 0.004],
    ["status=~\"5..\".*pool=\"stable\"|pool=\"stable\",status=~\"5..\"", 0.003],
    ["histogram_quantile\\(0.95, .*http_request_duration_seconds_bucket\\{pool=\"canary\"", 0.045],
    ["histogram_quantile\\(0.95, .*http_request_duration_seconds_bucket\\{pool=\"stable\"", 0.040],
    ["histogram_quantile\\(0.99, .*http_request_duration_seconds_bucket\\{pool=\"canary\"", 0.180],
    ["histogram_quantile\\(0.99, .*http_request_duration_seconds_bucket\\{pool=\"stable\"", 0.150],
    ["ws_delivery_latency_seconds_bucket\\{pool=\"canary\"", 0.020]'
serve() { # serve [OVERRIDE,…]: the healthy answers after the overrides
    printf '{"answers": [%s %s]}\n' "${1:+$1,}" "$healthy" >"$scenario"
}
verdict_is() { # verdict_is EXIT_CODE TEXT: canary-check exits so and prints TEXT
    local expected=$1 text=$2 status=0
    shift 2
    "$deploy/canary-check.sh" --prometheus "$prometheus" "$@" >"$checks_work/verdict.out" 2>&1 || status=$?
    cat "$checks_work/verdict.out"
    [[ $status == "$expected" ]] || { echo "exit $status, expected $expected"; return 1; }
    grep -q -- "$text" "$checks_work/verdict.out"
}

serve ""
check "go: a healthy canary" verdict_is 0 "verdict: GO"
serve '["status=~\"5..\".*pool=\"canary\"|pool=\"canary\",status=~\"5..\"", 0.03]'
check "no-go: canary error ratio 3 % (above 2 %)" verdict_is 1 "canary error ratio 3.00 % is above 2 %"
serve '["status=~\"5..\".*pool=\"canary\"|pool=\"canary\",status=~\"5..\"", 0.015], ["status=~\"5..\".*pool=\"stable\"|pool=\"stable\",status=~\"5..\"", 0.001]'
check "no-go: canary error ratio 1.5 %, more than 1 point above stable's 0.1 %" verdict_is 1 "more than 1 point above stable"
serve '["histogram_quantile\\(0.95, .*http_request_duration_seconds_bucket\\{pool=\"canary\"", 0.62]'
check "no-go: canary p95 620 ms (objective 500 ms)" verdict_is 1 "canary p95 latency 620 ms is above the objective 500 ms"
serve '["histogram_quantile\\(0.99, .*http_request_duration_seconds_bucket\\{pool=\"canary\"", 1.4]'
check "no-go: canary p99 1.4 s (objective 1 s)" verdict_is 1 "canary p99 latency 1400 ms is above the objective 1000 ms"
serve '["histogram_quantile\\(0.95, .*http_request_duration_seconds_bucket\\{pool=\"canary\"", 0.2]'
check "no-go: canary p95 200 ms against stable's 40 ms" verdict_is 1 "more than 1.5 × stable's 40 ms"
serve '["ws_delivery_latency_seconds_bucket\\{pool=\"canary\"", 0.45]'
check "no-go: canary WebSocket delivery p95 450 ms" verdict_is 1 "WebSocket delivery p95 450 ms is above 300 ms"
serve '["ws_delivery_latency_seconds_bucket\\{pool=\"canary\"", "NaN"]'
check "go: no WebSocket event in the window is not judged" verdict_is 0 "no event delivered in the window, not judged"
serve '["sum\\(increase\\(http_requests_total\\{pool=\"canary\"", 40]'
check "no-go: 40 canary requests are too few to judge" verdict_is 1 "too few to judge"
serve '["pool=\"canary\"", null]'
check "no-go: no data for the canary" verdict_is 1 "canary traffic: no data"
serve '[".", null]'
check "no-go: Prometheus has no data at all" verdict_is 1 "verdict: NO-GO"
serve '["histogram_quantile", "error"]'
check "no-go: Prometheus answers an error" verdict_is 1 "chosen failure"
check "no-go: Prometheus unreachable" bash -c "
    '$deploy/canary-check.sh' --prometheus http://127.0.0.1:1 >'$checks_work/unreachable.out'; status=\$?
    cat '$checks_work/unreachable.out'; [[ \$status == 1 ]] && grep -q 'Prometheus unreachable' '$checks_work/unreachable.out'"
check "usage: no URL, a bad window or a stray argument exits 2" \
    bash -c "env -u PROMETHEUS_URL '$deploy/canary-check.sh'; [[ \$? == 2 ]] && '$deploy/canary-check.sh' --prometheus x --window soon; [[ \$? == 2 ]] && '$deploy/canary-check.sh' --prometheus x extra; [[ \$? == 2 ]]"
serve ""
check "PROMETHEUS_URL works as --prometheus does" bash -c "PROMETHEUS_URL='$prometheus' '$deploy/canary-check.sh' >/dev/null"

# canary.sh and rollback.sh with a recording `docker`, on a copy of the production env file.
mkdir -p "$checks_work/bin"
cat >"$checks_work/bin/docker" <<FAKE
#!/usr/bin/env bash
echo "docker \$*" >>"$checks_work/docker.calls"
FAKE
chmod +x "$checks_work/bin/docker"
export PATH="$checks_work/bin:$PATH"
env_file=$checks_work/production.env
cp "$deploy/env/production.env.example" "$env_file"
sed -i 's|^GAD_CANARY_IMAGE=.*|GAD_CANARY_IMAGE=registry.example.org/gad:1.5.0|' "$env_file"
setting() { sed -n "s/^$1=//p" "$env_file"; }
settings_are() { # settings_are VAR=VALUE…
    local pair
    for pair in "$@"; do
        [[ $(setting "${pair%%=*}") == "${pair#*=}" ]] || { echo "${pair%%=*} is $(setting "${pair%%=*}"), expected ${pair#*=}"; return 1; }
    done
}
called() { grep -qF -- "$1" "$checks_work/docker.calls" || { cat "$checks_work/docker.calls"; return 1; }; }

check "canary.sh 25 writes the weights and reloads Caddy in place" bash -c "
    '$deploy/canary.sh' --env-file '$env_file' 25 >/dev/null"
check "  … GAD_CANARY_WEIGHT=25, GAD_STABLE_WEIGHT=75" settings_are GAD_CANARY_WEIGHT=25 GAD_STABLE_WEIGHT=75
check "  … caddy reload with the new weights" \
    called "exec -T -e GAD_CANARY_WEIGHT=25 -e GAD_STABLE_WEIGHT=75 caddy caddy reload --config /etc/caddy/Caddyfile"
check "  … the Caddyfile is valid at that weight" bash -c "set -a; source '$env_file'; set +a
    GAD_STABLE_UPSTREAM=gad-stable:8080 GAD_CANARY_UPSTREAM=gad-canary:8080 caddy validate --config '$deploy/caddy/Caddyfile' --adapter caddyfile"
check "canary.sh refuses 101, -5 and words with exit 2" bash -c "
    for bad in 101 -5 half ''; do '$deploy/canary.sh' --env-file '$env_file' --no-reload \"\$bad\"; [[ \$? == 2 ]] || exit 1; done"

start_gad canary
rm -f "$checks_work/docker.calls"
check "rollback.sh during a canary: weight 0, canary back on the stable image, smoke test passes" \
    "$deploy/rollback.sh" --env-file "$env_file" --base-url "$GAD_URL"
check "  … GAD_CANARY_WEIGHT=0 and the canary on GAD_IMAGE" \
    settings_are GAD_CANARY_WEIGHT=0 GAD_STABLE_WEIGHT=100 GAD_CANARY_IMAGE=registry.example.org/gad:1.4.0
check "  … the canary pool recreated" called "up -d --no-deps --wait gad-canary"

sed -i 's|^GAD_CANARY_IMAGE=.*|GAD_CANARY_IMAGE=registry.example.org/gad:1.5.0|' "$env_file"
check "canary.sh promote: the canary image becomes stable, the old one is kept" bash -c "
    '$deploy/canary.sh' --env-file '$env_file' promote >/dev/null"
check "  … GAD_IMAGE=1.5.0, GAD_PREVIOUS_IMAGE=1.4.0, weight 0" settings_are \
    GAD_IMAGE=registry.example.org/gad:1.5.0 GAD_PREVIOUS_IMAGE=registry.example.org/gad:1.4.0 GAD_CANARY_WEIGHT=0
rm -f "$checks_work/docker.calls"
check "rollback.sh after a promotion: both pools back on the previous image, smoke test passes" \
    "$deploy/rollback.sh" --env-file "$env_file" --base-url "$GAD_URL"
check "  … GAD_IMAGE and GAD_CANARY_IMAGE are 1.4.0 again" \
    settings_are GAD_IMAGE=registry.example.org/gad:1.4.0 GAD_CANARY_IMAGE=registry.example.org/gad:1.4.0
check "  … both pools recreated" called "up -d --no-deps --wait gad-stable gad-canary"
stop_gad
check "rollback.sh and smoke-test.sh refuse bad usage with exit 2" bash -c "
    '$deploy/rollback.sh' --env-file '$env_file' --bogus; [[ \$? == 2 ]] && '$deploy/smoke-test.sh' a b; [[ \$? == 2 ]]"
check "rollback.sh fails when the smoke test fails" bash -c "! '$deploy/rollback.sh' --env-file '$env_file' --base-url '$GAD_URL' >/dev/null"

finish_checks
