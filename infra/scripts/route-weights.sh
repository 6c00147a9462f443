#!/usr/bin/env bash
# Set the champion/challenger traffic split of the artflow HTTPRoute.
#
#   infra/scripts/route-weights.sh CHALLENGER_PERCENT [kubectl flags...]
#   infra/scripts/route-weights.sh 10 -n artflow     # 90 % champion, 10 % challenger
#   infra/scripts/route-weights.sh 0 -n artflow      # everything back on the champion
#
# A JSON patch whose `test` operations first check that backendRefs[0] is the champion and
# [1] the challenger (as in infra/k8s/base/serving/route.yaml), so a reordered route fails
# loudly instead of sending traffic to the wrong side. ROUTE_FILE=path patches a rendered
# manifest offline (kubectl patch --local) and prints the result; the tests use that.
set -euo pipefail

share="${1:-}"
if ! [[ "$share" =~ ^[0-9]+$ ]] || ((share > 100)); then
  echo "usage: $0 CHALLENGER_PERCENT(0-100) [kubectl flags...]; got '${share}'" >&2
  exit 2
fi
shift

refs=/spec/rules/0/backendRefs
patch=$(printf '[%s,%s,%s,%s]' \
  "{\"op\":\"test\",\"path\":\"${refs}/0/name\",\"value\":\"artflow-champion\"}" \
  "{\"op\":\"test\",\"path\":\"${refs}/1/name\",\"value\":\"artflow-challenger\"}" \
  "{\"op\":\"replace\",\"path\":\"${refs}/0/weight\",\"value\":$((100 - share))}" \
  "{\"op\":\"replace\",\"path\":\"${refs}/1/weight\",\"value\":${share}}")

if [[ -n "${ROUTE_FILE:-}" ]]; then
  exec kubectl patch --local -f "$ROUTE_FILE" --type=json -p "$patch" -o json "$@"
fi
kubectl patch httproute artflow --type=json -p "$patch" "$@"
echo "route artflow: champion $((100 - share)) %, challenger ${share} %"
