#!/usr/bin/env bash
# Change the serving admin state that every pod follows, through the service's own admin API.
#
#   infra/scripts/serving-admin.sh weight CHALLENGER_PERCENT [kubectl flags...]
#   infra/scripts/serving-admin.sh weight 10 -n artflow    # 10 % of the users see the challenger
#   infra/scripts/serving-admin.sh weight 0 -n artflow     # every user back on the champion
#   infra/scripts/serving-admin.sh reload -n artflow       # every pod re-resolves its models
#
# One mechanism: POST /admin/weight (or /admin/reload) on one champion pod, which stores the
# change in the serving store; every pod applies it within serve.sync_interval_s
# (docs/serving.md, "State across pods"). The HTTPRoute's weights are fixed and never moved.
# The call runs inside the pod (`kubectl exec`) against 127.0.0.1, so the admin token is
# read there (ARTFLOW_ADMIN_TOKEN_FILE, the mounted Secret) and never leaves the cluster.
# ARTFLOW_ADMIN_URL overrides the address (tests).
set -euo pipefail

action="${1:-}"
shift || true
case "$action" in
  weight)
    share="${1:-}"
    shift || true
    if ! [[ "$share" =~ ^[0-9]{1,3}$ ]] || ((share > 100)); then
      echo "usage: $0 weight CHALLENGER_PERCENT(0-100) [kubectl flags...]; got '${share}'" >&2
      exit 2
    fi
    path=/admin/weight
    body=$(printf '{"weight": %d.%02d}' $((share / 100)) $((share % 100)))
    ;;
  reload)
    path=/admin/reload
    body='{}'
    ;;
  *)
    echo "usage: $0 weight PERCENT | reload [kubectl flags...]" >&2
    exit 2
    ;;
esac

# Runs with the pod's own Python: the token from the mounted file (or the variable), a JSON
# POST, the answer printed; any non-2xx answer fails the call with its body.
# shellcheck disable=SC2016  # the Python source is literal
call='
import json, os, sys, urllib.error, urllib.request
path, body = sys.argv[1], sys.argv[2]
token = os.environ.get("ARTFLOW_ADMIN_TOKEN", "")
if not token and os.environ.get("ARTFLOW_ADMIN_TOKEN_FILE"):
    with open(os.environ["ARTFLOW_ADMIN_TOKEN_FILE"]) as f:
        token = f.read().strip()
url = os.environ.get("ARTFLOW_ADMIN_URL", "http://127.0.0.1:3000") + path
req = urllib.request.Request(url, data=body.encode(), method="POST", headers={
    "Authorization": "Bearer " + token, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as answer:
        print(answer.read().decode())
except urllib.error.HTTPError as exc:
    sys.exit(f"{path}: HTTP {exc.code}: {exc.read().decode()[:500]}")
except OSError as exc:
    sys.exit(f"{path}: {exc}")
'
kubectl exec deployment/artflow-champion -c bento "$@" -- python -c "$call" "$path" "$body"
echo "serving admin: ${action} ${share:-} applied (every pod within serve.sync_interval_s)"
