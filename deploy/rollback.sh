#!/usr/bin/env bash
# Rolls GAD back to the previous image in one step, then verifies with the smoke test.
#
#   deploy/rollback.sh [--env-file FILE] [--base-url URL]
#
# During a canary (GAD_CANARY_IMAGE differs from GAD_IMAGE): the canary's weight goes to 0 at once,
# then the canary pool is recreated on the stable image. After a promotion (they are equal): the
# stable and canary pools go back to GAD_PREVIOUS_IMAGE. The database is not rolled back:
# migrations are additive, so the previous image runs on the newer schema
# (docs/runbooks/ROLLBACK_PROCEDURE.md). URL: --base-url, else https://$GAD_DOMAIN.
# Exits 0 when rolled back and the smoke test passes, 1 otherwise, 2 on bad usage.
set -euo pipefail

usage() {
    echo "usage: $0 [--env-file FILE] [--base-url URL]" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
env_file=$here/env/production.env
base_url=
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage ;;
        --env-file) [[ $# -ge 2 ]] || usage; env_file=$2; shift 2 ;;
        --base-url) [[ $# -ge 2 ]] || usage; base_url=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ -f $env_file ]] || { echo "rollback: no env file $env_file" >&2; exit 1; }

# shellcheck source=env-file.sh
source "$here/env-file.sh"

stable_image=$(setting GAD_IMAGE)
canary_image=$(setting GAD_CANARY_IMAGE)
[[ -n $stable_image && -n $canary_image ]] || { echo "rollback: GAD_IMAGE and GAD_CANARY_IMAGE must be set in $env_file" >&2; exit 1; }
base_url=${base_url:-https://$(setting GAD_DOMAIN)}

# First the traffic: nothing new reaches the canary from here on.
"$here/canary.sh" --env-file "$env_file" 0

if [[ $canary_image != "$stable_image" ]]; then
    echo "rollback: canary $canary_image → $stable_image"
    set_setting GAD_CANARY_IMAGE "$stable_image"
    compose up -d --no-deps --wait gad-canary
else
    previous=$(setting GAD_PREVIOUS_IMAGE)
    [[ -n $previous ]] || { echo "rollback: no GAD_PREVIOUS_IMAGE in $env_file: nothing to roll back to" >&2; exit 1; }
    echo "rollback: stable and canary $stable_image → $previous"
    set_setting GAD_IMAGE "$previous"
    set_setting GAD_CANARY_IMAGE "$previous"
    set_setting GAD_PREVIOUS_IMAGE "$stable_image"
    compose up -d --no-deps --wait gad-stable gad-canary
fi

echo "rollback: verifying $base_url"
"$here/smoke-test.sh" "$base_url"
