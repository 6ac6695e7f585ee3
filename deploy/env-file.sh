# shellcheck shell=bash
# shellcheck disable=SC2154  # env_file and here are the sourcing script's
# Sourced by canary.sh and rollback.sh: reading and editing the deployment's env file, and
# Compose on the stack that file belongs to. Needs $env_file and $here (this directory).

# The value of VAR in the env file.
setting() { sed -n "s/^$1=//p" "$env_file" | tail -n 1; }

# Sets VAR=VALUE in the env file, in place (appended when absent).
set_setting() {
    if grep -q "^$1=" "$env_file"; then
        sed -i "s|^$1=.*|$1=$2|" "$env_file"
    else
        echo "$1=$2" >>"$env_file"
    fi
}

# docker compose on the staging or production stack, as GAD_ENV in the env file says.
compose() {
    local file=$here/compose.prod.yaml
    [[ $(setting GAD_ENV) == staging ]] && file=$here/compose.staging.yaml
    docker compose -f "$file" --env-file "$env_file" "$@"
}
