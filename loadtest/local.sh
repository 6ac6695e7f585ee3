#!/usr/bin/env bash
# Runs the load scenarios against a GAD served here for the purpose: a scratch database, a
# Redis key prefix of its own, an admin with a random password, and request limits raised so
# that the run measures capacity rather than the rate limiter. Removes all of it afterwards and
# exits with the runner's status (0 pass, 1 a threshold failed or an event was lost, 2 cannot
# start).
#   loadtest/local.sh [smoke|full] [debug|release] [more runner options…]
# (after `just services`; uses .data/env)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source .data/env
profile=${1:-smoke}
build=${2:-debug}
shift $(($# < 2 ? $# : 2))
target=${CARGO_TARGET_DIR:-$root/target}
flags=()
[[ $build == release ]] && flags=(--release)
cargo build --locked -q --bin gad "${flags[@]}"
gad="$target/$build/gad"

source scripts/scratch-gad.sh
GAD_JWT_SECRET="load-signing-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GAD_JWT_SECRET
scratch_gad "$gad" gad_load load@gad.local "$target/loadtest/server-$profile.log"
status=0
GAD_LOAD_EMAIL=load@gad.local GAD_LOAD_PASSWORD=$password \
    loadtest/run --base "$base" --profile "$profile" "$@" || status=$?
exit "$status"
