#!/usr/bin/env bash
# Mints a long-lived token for kro-hub's ServiceAccount on a member cluster
# (a kubernetes.io/service-account-token Secret) and writes a kubeconfig that
# `kro-hub cluster add` accepts: the CA and the token inline, no exec plugin,
# no file reference.
#
# Run it against the member, after `kubectl apply -k deploy/member/` there:
#
#   deploy/member/make-kubeconfig.sh --context kind-member-a \
#       --server https://172.18.0.3:6443 --name member-a member-a.kubeconfig
#   kro-hub cluster add member-a --kubeconfig member-a.kubeconfig --label env=dev
#
# --server is the member's API server as the hub's pods reach it (default:
# the server of the kubectl context used). Re-running it keeps the token;
# to rotate, delete the Secret, run it again and `cluster add` again (the hub
# picks up the new Secret without a restart).
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: make-kubeconfig.sh [--kubeconfig FILE] [--context NAME] [--server URL]
                          [--name NAME] [--namespace NS]
                          [--service-account NAME] [--timeout SECONDS] OUTPUT
EOF
  exit 2
}

kubeconfig=""
context=""
server=""
name="member"
namespace="kro-system"
account="kro-hub"
timeout=60
output=""
while (($# > 0)); do
  case "$1" in
    --kubeconfig) kubeconfig=${2:?}; shift 2 ;;
    --context) context=${2:?}; shift 2 ;;
    --server) server=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    --namespace) namespace=${2:?}; shift 2 ;;
    --service-account) account=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) [[ -z $output ]] || usage; output=$1; shift ;;
  esac
done
[[ -n $output ]] || usage

kube=(kubectl)
[[ -z $kubeconfig ]] || kube+=(--kubeconfig "$kubeconfig")
[[ -z $context ]] || kube+=(--context "$context")

secret="$account-token"
if ! "${kube[@]}" -n "$namespace" get serviceaccount "$account" >/dev/null; then
  echo "no ServiceAccount $namespace/$account on the member: apply deploy/member/ there first" >&2
  exit 1
fi

# The token controller fills in the token and the cluster's CA.
"${kube[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $secret
  namespace: $namespace
  annotations:
    kubernetes.io/service-account.name: $account
  labels:
    app.kubernetes.io/name: kro-hub
type: kubernetes.io/service-account-token
EOF

token=""
deadline=$((SECONDS + timeout))
while :; do
  token=$("${kube[@]}" -n "$namespace" get secret "$secret" -o 'jsonpath={.data.token}')
  [[ -z $token ]] || break
  if ((SECONDS >= deadline)); then
    echo "Secret $namespace/$secret has no token after ${timeout}s: is the token controller running?" >&2
    exit 1
  fi
  sleep 1
done
token=$(printf '%s' "$token" | base64 --decode)
ca=$("${kube[@]}" -n "$namespace" get secret "$secret" -o 'jsonpath={.data.ca\.crt}')

if [[ -z $server ]]; then
  server=$("${kube[@]}" config view --minify --raw -o 'jsonpath={.clusters[0].cluster.server}')
fi
[[ -n $server ]] || { echo "no server address: pass --server" >&2; exit 1; }
if [[ -z $ca && $server == https://* ]]; then
  echo "Secret $namespace/$secret holds no ca.crt to verify $server with" >&2
  exit 1
fi

umask 077
{
  printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: "%s"\n  cluster:\n    server: "%s"\n' "$name" "$server"
  [[ -z $ca ]] || printf '    certificate-authority-data: "%s"\n' "$ca"
  printf 'users:\n- name: "%s"\n  user:\n    token: "%s"\n' "$account" "$token"
  printf 'contexts:\n- name: "%s"\n  context:\n    cluster: "%s"\n    user: "%s"\n' "$name" "$name" "$account"
  printf 'current-context: "%s"\n' "$name"
} >"$output"
echo "wrote $output: the member $server as system:serviceaccount:$namespace:$account" >&2
