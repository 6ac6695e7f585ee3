#!/usr/bin/env bash
# Sets the share of traffic the canary pool gets, or promotes the canary's image to stable.
#
#   deploy/canary.sh [--env-file FILE] [--no-reload] WEIGHT    # 0..100; the steps are 5 25 50 100
#   deploy/canary.sh [--env-file FILE] [--no-reload] promote
#
# WEIGHT is written to the env file (GAD_CANARY_WEIGHT, GAD_STABLE_WEIGHT = 100 - WEIGHT) and Caddy
# reloads its configuration in place: open connections stay, new requests follow the new weights.
# `promote` makes the canary's image the stable one (the old one is kept as GAD_PREVIOUS_IMAGE
# for deploy/rollback.sh), recreates the stable pool on it and sets the weight back to 0.
# FILE: --env-file, else deploy/env/production.env. --no-reload only edits the file.
# Run deploy/canary-check.sh before each step up. Exits 0 when done, 1 on failure, 2 on bad usage.
set -euo pipefail

usage() {
    echo "usage: $0 [--env-file FILE] [--no-reload] WEIGHT|promote   (WEIGHT: 0..100, e.g. 5 25 50 100)" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
env_file=$here/env/production.env
reload=1
action=
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage ;;
        --env-file) [[ $# -ge 2 ]] || usage; env_file=$2; shift 2 ;;
        --no-reload) reload=0; shift ;;
        -*) usage ;;
        *) [[ -z $action ]] || usage; action=$1; shift ;;
    esac
done
[[ $action == promote || $action =~ ^(100|[1-9]?[0-9])$ ]] || usage
[[ -f $env_file ]] || { echo "canary: no env file $env_file" >&2; exit 1; }

# shellcheck source=env-file.sh
source "$here/env-file.sh"

set_weight() {
    set_setting GAD_CANARY_WEIGHT "$1"
    set_setting GAD_STABLE_WEIGHT "$((100 - $1))"
    if [[ $reload -eq 1 ]]; then
        compose exec -T -e "GAD_CANARY_WEIGHT=$1" -e "GAD_STABLE_WEIGHT=$((100 - $1))" caddy \
            caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile
    fi
    echo "canary: weight $1 % (stable $((100 - $1)) %)"
}

if [[ $action == promote ]]; then
    canary_image=$(setting GAD_CANARY_IMAGE)
    stable_image=$(setting GAD_IMAGE)
    [[ -n $canary_image && -n $stable_image ]] || { echo "canary: GAD_IMAGE and GAD_CANARY_IMAGE must be set in $env_file" >&2; exit 1; }
    [[ $canary_image != "$stable_image" ]] || { echo "canary: the canary runs the stable image already: nothing to promote" >&2; exit 1; }
    set_setting GAD_PREVIOUS_IMAGE "$stable_image"
    set_setting GAD_IMAGE "$canary_image"
    if [[ $reload -eq 1 ]]; then
        # Rolling: the canary pool serves while the stable pool's containers are recreated.
        compose up -d --no-deps --wait gad-stable
    fi
    set_weight 0
    echo "canary: promoted $canary_image to stable (previous: $stable_image)"
else
    set_weight "$action"
fi
