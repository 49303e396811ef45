#!/usr/bin/env bash
# Creates (or adopts) the Kubernetes cluster kverify verifies against, loads the demo app image into it,
# and records what it made so scripts/teardown.sh can delete exactly that and nothing else.
set -euo pipefail

SCRIPT_NAME=setup.sh
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/kind.sh
source "$KVERIFY_ROOT/scripts/lib/kind.sh"
# shellcheck source=lib/k3d.sh
source "$KVERIFY_ROOT/scripts/lib/k3d.sh"

usage() {
  cat <<USAGE
Usage: scripts/setup.sh [--provider auto|kind|k3d|existing] [--nodes N] [--name NAME]
                        [--context CTX] [--image IMAGE] [--skip-build] [--timeout SECONDS] [--dry-run]

Prepares a cluster for kverify:
  1. picks a provider: --provider auto (default) takes k3d if installed, else kind, else the current
     kubectl context ('existing'); --context CTX with auto means 'existing' with that context
  2. kind/k3d: builds the demo app image (manifests/app/Dockerfile) and creates cluster NAME with
     1 control plane + N-1 workers, mapping NodePorts $KVERIFY_REDIS_NODEPORT (Redis), $KVERIFY_APP_NODEPORT (app) and $KVERIFY_METRICS_NODEPORT (metrics)
     to the same ports on $KVERIFY_HOST_ADDRESS; writes its own kubeconfig (~/.kube/config is not touched)
     and loads the image into every node (kind load docker-image / k3d image import)
     existing: creates nothing, builds and loads nothing; only records the context to use
  3. records the cluster in .kverify/clusters/NAME.env (teardown deletes only what is recorded there)
  4. waits until N nodes are Ready: 'kverify preflight --nodes N' when a kverify with that command is
     found (KVERIFY_BIN, PATH, .build/*/kverify), 'kubectl wait' otherwise
  5. prints the kubeconfig file and context name to use

Options:
  --provider P       auto (default), kind, k3d or existing
  --nodes N          nodes in the cluster (default 1); for 'existing', the Ready nodes expected
  --name NAME        cluster and record name (default $KVERIFY_DEFAULT_NAME); contexts are kind-NAME / k3d-NAME
  --context CTX      kubectl context of an existing cluster (default: the current context)
  --image IMAGE      demo app image to build and load (default $KVERIFY_DEFAULT_IMAGE)
  --skip-build       load IMAGE as it is in docker, without building it
  --timeout SECONDS  how long to wait for cluster creation and Ready nodes (default 300)
  --dry-run          print every command (and the generated kind config) instead of running it
  -h, --help         show this help

Environment: KVERIFY_STATE_DIR (default <repo>/.kverify), KVERIFY_BIN (kverify binary, or 'none').
Needs docker plus kind or k3d for a new cluster, kubectl (or kverify) to wait; never downloads them.
Exit status: 0 ready, 1 refused (name taken or already recorded), 2 usage error or missing tool,
3 docker or the cluster unreachable, or not Ready in time.
USAGE
}

provider=auto nodes=1 name=$KVERIFY_DEFAULT_NAME context="" image=$KVERIFY_DEFAULT_IMAGE build=1 timeout=300
while (($#)); do
  case $1 in
    --provider) need_value "$@"; provider=$2; shift 2 ;;
    --provider=*) provider=${1#*=}; shift ;;
    --nodes) need_value "$@"; nodes=$2; shift 2 ;;
    --nodes=*) nodes=${1#*=}; shift ;;
    --name) need_value "$@"; name=$2; shift 2 ;;
    --name=*) name=${1#*=}; shift ;;
    --context) need_value "$@"; context=$2; shift 2 ;;
    --context=*) context=${1#*=}; shift ;;
    --image) need_value "$@"; image=$2; shift 2 ;;
    --image=*) image=${1#*=}; shift ;;
    --timeout) need_value "$@"; timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --skip-build) build=0; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "$EXIT_USAGE" "unknown argument '$1' (see --help)" ;;
  esac
done
validate_name "$name"
validate_count --nodes "$nodes"
validate_seconds --timeout "$timeout"
[[ $image =~ ^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$ ]] || die "$EXIT_USAGE" "--image '$image': expected an image reference like $KVERIFY_DEFAULT_IMAGE"

case $provider in
  auto)
    if [[ -n $context ]]; then provider=existing
    elif have_tool k3d; then provider=k3d
    elif have_tool kind; then provider=kind
    elif have_tool kubectl; then provider=existing
    else
      die "$EXIT_USAGE" "no way to get a cluster: neither k3d nor kind is installed, and kubectl is missing too. For a new cluster, $(install_hint k3d); or $(install_hint kind); both also need Docker: $(install_hint docker). For an existing cluster, $(install_hint kubectl) and point it at the cluster. These scripts never download tools themselves."
    fi
    log "provider: $provider (auto-detected)"
    ;;
  kind | k3d | existing) ;;
  *) die "$EXIT_USAGE" "--provider '$provider': expected auto, kind, k3d or existing" ;;
esac
if [[ $provider != existing && -n $context ]]; then
  die "$EXIT_USAGE" "--context applies to --provider existing only; a $provider cluster's context is $("${provider}_context" "$name")"
fi

record="$(record_path "$name")"
if [[ -f $record ]]; then
  die "$EXIT_FAILED" "cluster '$name' is already recorded in $record; run 'scripts/teardown.sh --name $name' first, or pick another --name"
fi

# --- an existing cluster: adopt its context, create nothing --------------------------------------------
if [[ $provider == existing ]]; then
  find_kverify >/dev/null || require_tool kubectl "needed for an existing cluster"
  if [[ -z $context ]]; then
    if ((DRY_RUN)); then
      run kubectl config current-context
      context="<current-context>"
    else
      require_tool kubectl "needed to read the current context"
      context="$(kubectl config current-context 2>/dev/null)" ||
        die "$EXIT_USAGE" "kubectl has no current context; pass --context CTX (see 'kubectl config get-contexts')"
    fi
  fi
  log "existing cluster, context '$context': nothing is created, and teardown will never delete it"
  log "image $image is not built or loaded: push it to a registry this cluster pulls from, and pass that name to kverify"
  # No kubeconfig copy (it would duplicate credentials): kubectl's own configuration stays the source.
  write_record "$name" "KVERIFY_CREATED_BY=$KVERIFY_RECORD_MAGIC" "KVERIFY_PROVIDER=existing" "KVERIFY_CREATED=no" \
    "KVERIFY_CLUSTER_NAME=$name" "KVERIFY_KUBECONFIG=" "KVERIFY_CONTEXT=$context" "KVERIFY_NODES=$nodes" \
    "KVERIFY_IMAGE=$image" "KVERIFY_CREATED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  wait_for_nodes "" "$context" "$nodes" "$timeout"
  if ((DRY_RUN)); then
    printf 'dry run: nothing was run or written\n'
  else
    printf 'cluster: existing context %s (%s node(s) Ready)\n' "$context" "$nodes"
    printf 'kubeconfig: your own (KUBECONFIG or ~/.kube/config)\ncontext: %s\n' "$context"
    printf 'teardown: scripts/teardown.sh --name %s forgets the record; it never deletes this cluster\n' "$name"
  fi
  exit 0
fi

# --- a new kind or k3d cluster -----------------------------------------------------------------------
require_tool "$provider"
require_tool docker "$provider runs its nodes as docker containers"
find_kverify >/dev/null || require_tool kubectl "needed to wait for Ready nodes when no kverify is built"

QUERY=()
kubeconfig="$(kubeconfig_path "$name")"
context="$("${provider}_context" "$name")"
marker="setup-$(date -u +%Y%m%dT%H%M%SZ)-$RANDOM"

"${provider}_containers_query" "$name"
if ((DRY_RUN)); then
  printf '[dry-run] docker info   # must succeed: the docker daemon answers\n'
  printf '[dry-run] %s   # must print nothing: no %s cluster %s yet\n' "$(quote_command "${QUERY[@]}")" "$provider" "$name"
else
  docker info >/dev/null 2>&1 ||
    die "$EXIT_UNREACHABLE" "docker is installed but its daemon does not answer ('docker info' failed); start Docker and retry"
  existing_ids="$("${QUERY[@]}")" ||
    die "$EXIT_UNREACHABLE" "cannot list docker containers to check whether $provider cluster '$name' exists"
  if [[ -n $existing_ids ]]; then
    die "$EXIT_FAILED" "a $provider cluster named '$name' already exists and this setup did not create it (no record in $record); pick another --name, or delete it yourself with '$("${provider}_delete_hint" "$name")'"
  fi
  mkdir -p "$STATE_DIR"
fi

if ((build)); then
  run docker build --tag "$image" --file "$KVERIFY_ROOT/manifests/app/Dockerfile" "$KVERIFY_ROOT/manifests/app"
fi

"${provider}_create" "$name" "$nodes" "$marker" "$kubeconfig" "$timeout" ||
  die "$EXIT_UNREACHABLE" "$provider could not create cluster '$name' (its output is above)"

record_fields=("KVERIFY_CREATED_BY=$KVERIFY_RECORD_MAGIC" "KVERIFY_PROVIDER=$provider" "KVERIFY_CREATED=yes"
  "KVERIFY_CLUSTER_NAME=$name" "KVERIFY_KUBECONFIG=$kubeconfig" "KVERIFY_CONTEXT=$context" "KVERIFY_NODES=$nodes"
  "KVERIFY_IMAGE=$image" "KVERIFY_MARKER=$marker" "KVERIFY_CREATED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
if [[ $provider == kind ]]; then
  kind_control_plane_query "$name"
  if ((DRY_RUN)); then
    printf '[dry-run] %s   # recorded as KVERIFY_NODE_ID\n' "$(quote_command "${QUERY[@]}")"
    node_id="<control-plane container id>"
  else
    node_id="$("${QUERY[@]}")" || node_id=""
    [[ $node_id =~ ^[0-9a-f]+$ ]] ||
      die "$EXIT_UNREACHABLE" "kind created cluster '$name' but docker shows no single control-plane container labelled io.x-k8s.kind.cluster=$name (got '${node_id//$'\n'/ }'); delete it with 'kind delete cluster --name $name'"
  fi
  record_fields+=("KVERIFY_NODE_ID=$node_id")
fi
# Recorded before anything else can fail, so teardown can always remove what was created.
write_record "$name" "${record_fields[@]}"
# From here on a failure leaves a cluster behind: say how to remove it.
remind_teardown() {
  local status=$?
  ((status == 0)) || log "cluster '$name' exists and is recorded; 'scripts/teardown.sh --name $name' deletes it"
}
((DRY_RUN)) || trap remind_teardown EXIT

"${provider}_load_image" "$name" "$image" ||
  die "$EXIT_FAILED" "could not load image $image into $provider cluster '$name' (is it built? try without --skip-build)"

wait_for_nodes "$kubeconfig" "$context" "$nodes" "$timeout"

if ((DRY_RUN)); then
  printf 'dry run: nothing was run or written\n'
  exit 0
fi
cat <<SUMMARY
cluster: $provider cluster $name ($nodes node(s) Ready, image $image loaded)
kubeconfig: $kubeconfig
context: $context
use it: export KUBECONFIG=$kubeconfig   # or pass --kubeconfig $kubeconfig --context $context
NodePorts on $KVERIFY_HOST_ADDRESS: redis $KVERIFY_REDIS_NODEPORT, app $KVERIFY_APP_NODEPORT, metrics $KVERIFY_METRICS_NODEPORT
teardown: scripts/teardown.sh --name $name
SUMMARY
