#!/usr/bin/env bash
# Creates the hub and member kind clusters and writes one kubeconfig per
# cluster into ${OUT:-./.kind}. Needs kind and a container runtime.
#
#   bash kind-configs/create.sh            # hub + member-a + member-b
#   KRO_E2E_KUBECONFIG=.kind/hub.kubeconfig cargo nextest run -p kro-e2e -j 1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/../.kind}
mkdir -p "$out"
command -v kind >/dev/null || { echo "kind is not installed: https://kind.sigs.k8s.io" >&2; exit 1; }
for cluster in hub member-a member-b; do
  name=kro-$cluster
  if ! kind get clusters | grep -qx "$name"; then
    kind create cluster --config "$here/$cluster.yaml" --wait 120s
  fi
  kind get kubeconfig --name "$name" > "$out/$cluster.kubeconfig"
  echo "cluster $name: $out/$cluster.kubeconfig"
done
# Members are registered on the hub as Secrets holding their kubeconfig, in
# the form the hub reads (kind's internal address, reachable from the hub's
# node container).
for member in member-a member-b; do
  kind get kubeconfig --internal --name "kro-$member" > "$out/$member.internal.kubeconfig"
  kubectl --kubeconfig "$out/hub.kubeconfig" create namespace kro-system --dry-run=client -o yaml \
    | kubectl --kubeconfig "$out/hub.kubeconfig" apply -f -
  kubectl --kubeconfig "$out/hub.kubeconfig" -n kro-system create secret generic "$member-kubeconfig" \
    --from-file=kubeconfig="$out/$member.internal.kubeconfig" --dry-run=client -o yaml \
    | kubectl --kubeconfig "$out/hub.kubeconfig" apply -f -
done
echo "done: run the e2e suite with KRO_E2E_KUBECONFIG=$out/hub.kubeconfig cargo nextest run -p kro-e2e -j 1"
