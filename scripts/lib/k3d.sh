# shellcheck shell=bash
# shellcheck disable=SC2034  # a library: its variables are read by the scripts that source it
# k3d details for setup.sh and teardown.sh (sourced after common.sh). k3d labels its containers
# k3d.cluster=NAME and takes extra docker labels (--runtime-label), so a kverify cluster carries
# dev.kverify.created-by=<marker> on its server container and teardown checks exactly that.

k3d_context() { printf 'k3d-%s' "$1"; }

# k3d_create_args NAME NODES MARKER TIMEOUT: the `k3d cluster create` arguments (1 server + NODES-1 agents).
k3d_create_args() {
  local name=$1 nodes=$2 marker=$3 timeout=$4 port
  K3D_ARGS=(cluster create "$name" --servers 1 --agents $((nodes - 1)))
  for port in "${KVERIFY_NODEPORTS[@]}"; do
    K3D_ARGS+=(--port "$KVERIFY_HOST_ADDRESS:$port:$port@server:0")
  done
  # Never touch ~/.kube/config: setup writes the cluster's own kubeconfig file afterwards.
  K3D_ARGS+=(--runtime-label "$KVERIFY_RUNTIME_LABEL=$marker@server:0"
    --kubeconfig-update-default=false --kubeconfig-switch-context=false
    --wait --timeout "${timeout}s")
}

# k3d_containers_query NAME: QUERY lists the cluster's containers (any state) by k3d's own label.
k3d_containers_query() { QUERY=(docker ps -aq --no-trunc --filter "label=k3d.cluster=$1"); }
# k3d_marked_query NAME MARKER: QUERY lists those of its containers that carry setup's marker.
k3d_marked_query() {
  QUERY=(docker ps -aq --no-trunc --filter "label=k3d.cluster=$1" --filter "label=$KVERIFY_RUNTIME_LABEL=$2")
}
k3d_delete_hint() { printf 'k3d cluster delete %s' "$1"; }

k3d_create() {  # NAME NODES MARKER KUBECONFIG TIMEOUT
  local -a K3D_ARGS
  k3d_create_args "$1" "$2" "$3" "$5"
  run k3d "${K3D_ARGS[@]}"
  run k3d kubeconfig write "$1" --output "$4" --overwrite
}

k3d_load_image() { run k3d image import "$2" --cluster "$1"; }  # NAME IMAGE

k3d_delete() { run k3d cluster delete "$1"; }  # NAME (KUBECONFIG is kverify's own file, removed by teardown)
