#!/usr/bin/env bash
# A hub and two member clusters on kind, with kro-hub deployed on the hub
# and both members registered. Needs kind, kubectl, docker and a Rust
# toolchain (for `kro-hub cluster add`, unless KRO_HUB names a kro-hub
# binary). Kubeconfigs are written into ${OUT:-./.kind}.
#
#   bash kind-configs/create.sh                  # everything
#   bash kind-configs/create.sh --clusters-only  # the three clusters, no hub:
#   KRO_E2E_KUBECONFIG=.kind/hub.kubeconfig cargo nextest run -p kro-e2e -j 1
#
# (The e2e suite runs its own hub against the hub cluster, so it wants the
# clusters without the deployed one.)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${OUT:-$root/.kind}
image=kro-hub:dev # the image deploy/deployment.yaml names

clusters_only=false
case "${1:-}" in
  "") ;;
  --clusters-only) clusters_only=true ;;
  *) echo "usage: create.sh [--clusters-only]" >&2; exit 2 ;;
esac

need() {
  command -v "$1" >/dev/null || { echo "$1 is not installed: $2" >&2; exit 1; }
}
need kind https://kind.sigs.k8s.io
need kubectl https://kubernetes.io/docs/tasks/tools/
mkdir -p "$out"

# 1. The clusters, each with its own pod and service subnets.
for cluster in hub member-a member-b; do
  name=kro-$cluster
  if ! kind get clusters | grep -qx "$name"; then
    kind create cluster --config "$here/$cluster.yaml" --wait 120s
  fi
  kind get kubeconfig --name "$name" >"$out/$cluster.kubeconfig"
  echo "cluster $name: $out/$cluster.kubeconfig"
done
if $clusters_only; then
  echo "done: KRO_E2E_KUBECONFIG=$out/hub.kubeconfig cargo nextest run -p kro-e2e -j 1"
  exit 0
fi

need docker https://docs.docker.com/engine/install/
hub=(kubectl --kubeconfig "$out/hub.kubeconfig")

# 2. The image, built from this checkout and loaded into the hub's node.
docker build -f "$root/deploy/Dockerfile" -t "$image" "$root"
kind load docker-image "$image" --name kro-hub

# 3. kro-hub on the hub: namespace, CRDs, RBAC, Deployment.
"${hub[@]}" apply --server-side -k "$root/deploy"
"${hub[@]}" -n kro-system rollout restart deployment/kro-hub # a rebuilt image of the same tag
"${hub[@]}" -n kro-system rollout status deployment/kro-hub --timeout=180s

# 4. The members: the recipe applied on each, a token minted for the hub,
# and the member registered under its address on the docker network "kind"
# (the control-plane container's, reachable from the hub's pods; its API
# server certificate names that address).
if [[ -n ${KRO_HUB:-} ]]; then
  kro_hub=("$KRO_HUB")
else
  need cargo https://rustup.rs
  cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p kro-hub
  kro_hub=("${CARGO_TARGET_DIR:-$root/target}/release/kro-hub")
fi
for member in member-a member-b; do
  kubectl --kubeconfig "$out/$member.kubeconfig" apply --server-side -k "$root/deploy/member"
  address=$(docker inspect -f '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' \
    "kro-$member-control-plane")
  [[ -n $address ]] || { echo "kro-$member-control-plane has no address on the network kind" >&2; exit 1; }
  bash "$root/deploy/member/make-kubeconfig.sh" --kubeconfig "$out/$member.kubeconfig" \
    --server "https://$address:6443" --name "$member" "$out/$member.hub.kubeconfig"
  "${kro_hub[@]}" cluster add "$member" --kubeconfig "$out/$member.hub.kubeconfig" \
    --hub-kubeconfig "$out/hub.kubeconfig" --label env=kind --label "member=${member#member-}"
done
for member in member-a member-b; do
  "${hub[@]}" wait --for=condition=Ready "cluster.hub.kro.run/$member" --timeout=120s
done
"${kro_hub[@]}" cluster list --hub-kubeconfig "$out/hub.kubeconfig"
echo "done: kubectl --kubeconfig $out/hub.kubeconfig get rgd,clusters"
