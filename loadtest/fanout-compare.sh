#!/usr/bin/env bash
# The 10,000-socket fan-out beside its bare-tokio baseline, in one run: serves a scratch GAD
# (release build, raised socket caps and request limits, see scripts/scratch-gad.sh), then
# `loadtest/run fanout --compare`: rounds of the baseline and of GAD, interleaved, with both
# delivery distributions and the ratio of their p99s. Exits with the runner's status.
#   loadtest/fanout-compare.sh [fanout options…]
# (without options: 10,000 sockets, 3 rounds of 5 events 1 s apart on each server)
# GAD_BINARY=<path> serves another build of gad (e.g. the previous one, for a before/after).
# (after `just services`; uses .data/env). docs/LOAD_TESTING_GUIDE.md explains the measurement.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source .data/env
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --locked -q --release --bin gad --bin gad-load
# 10,000 sockets on each side of the loopback, in separate processes.
ulimit -n "$(ulimit -Hn)"
source scripts/scratch-gad.sh
GAD_JWT_SECRET="load-signing-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GAD_JWT_SECRET GAD__WS__MAX_CONNECTIONS=100000 GAD__WS__MAX_CONNECTIONS_PER_USER=100000
scratch_gad "${GAD_BINARY:-$target/release/gad}" gad_fanout fanout@gad.local "$target/loadtest/server-fanout.log"
echo "fanout-compare: GAD pid $server at $base; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
options=("$@")
(($#)) || options=(--connections 10000 --concurrency 50 --events 5 --rate 1 --idle-s 2 --compare 3)
status=0
GAD_LOAD_BASE=$base GAD_LOAD_EMAIL=fanout@gad.local GAD_LOAD_PASSWORD=$password "$target/release/gad-load" fanout --server-pid "$server" "${options[@]}" || status=$?
echo "fanout-compare: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exit "$status"
