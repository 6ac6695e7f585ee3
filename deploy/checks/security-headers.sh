#!/usr/bin/env bash
# The response security headers on a real GAD served with HSTS configured (as behind TLS):
# deploy/checks/security-headers.py against it. Writes the results to $1 (JSON).
#   GAD_BIN=… deploy/checks/security-headers.sh OUT_JSON   (or `just security-headers`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: security-headers.sh OUT_JSON}
# shellcheck source=gad-instance.sh
source "$here/gad-instance.sh"
export GAD__HTTP__HSTS=true
start_gad headers
python3 "$here/security-headers.py" "$GAD_URL" "$SMOKE_EMAIL" "$SMOKE_PASSWORD" "$out" --expect-hsts
