#!/usr/bin/env bash
# Is this cluster ready for kverify? Reachable, nodes Ready, the demo image on every node, and the
# permissions kverify's verifications use. Prints one line per check; read-only.
set -euo pipefail

SCRIPT_NAME=health-check.sh
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<USAGE
Usage: scripts/health-check.sh [--name NAME] [--kubeconfig FILE] [--context CTX] [--nodes N]
                               [--image IMAGE] [--namespace NS] [--dry-run]

Checks, with kubectl, the cluster setup.sh recorded as NAME (default $KVERIFY_DEFAULT_NAME), or without a
record kubectl's current context; --kubeconfig/--context/--nodes/--image override the record:
  reachable    the API server answers /readyz
  nodes        at least N nodes (default: the record's, else 1) and every node Ready
  image        IMAGE (default: the record's, else $KVERIFY_DEFAULT_IMAGE) present on every node (from the
               nodes' status.images); only a warning for an existing cluster, which may pull it
  permissions  'kubectl auth can-i' for each verb kverify uses, in namespace NS (default $KVERIFY_DEFAULT_NAMESPACE)

Options:
  --dry-run   print every command instead of running it
  -h, --help  show this help

Environment: KVERIFY_STATE_DIR (default <repo>/.kverify).
Exit status: 0 healthy, 1 a check failed, 2 usage error or missing kubectl, 3 cluster unreachable.
USAGE
}

# What kverify does to a cluster: "VERB RESOURCE [--subresource=S]", checked in --namespace unless cluster-scoped.
CLUSTER_PERMISSIONS=("get nodes" "list nodes" "create namespaces" "delete namespaces")
NAMESPACED_PERMISSIONS=(
  "create daemonsets.apps" "get daemonsets.apps" "list daemonsets.apps" "watch daemonsets.apps"
  "patch daemonsets.apps" "delete daemonsets.apps"
  "create deployments.apps" "get deployments.apps" "list deployments.apps" "watch deployments.apps"
  "patch deployments.apps" "delete deployments.apps"
  "get pods" "list pods" "watch pods" "delete pods" "get pods --subresource=log" "get pods --subresource=proxy"
  "create services" "get services" "delete services"
  "create configmaps" "get configmaps" "delete configmaps"
  "list events"
)

name=$KVERIFY_DEFAULT_NAME kubeconfig="" context="" nodes="" image="" namespace=$KVERIFY_DEFAULT_NAMESPACE
kubeconfig_set=0
while (($#)); do
  case $1 in
    --name) need_value "$@"; name=$2; shift 2 ;;
    --name=*) name=${1#*=}; shift ;;
    --kubeconfig) need_value "$@"; kubeconfig=$2; kubeconfig_set=1; shift 2 ;;
    --kubeconfig=*) kubeconfig=${1#*=}; kubeconfig_set=1; shift ;;
    --context) need_value "$@"; context=$2; shift 2 ;;
    --context=*) context=${1#*=}; shift ;;
    --nodes) need_value "$@"; nodes=$2; shift 2 ;;
    --nodes=*) nodes=${1#*=}; shift ;;
    --image) need_value "$@"; image=$2; shift 2 ;;
    --image=*) image=${1#*=}; shift ;;
    --namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --namespace=*) namespace=${1#*=}; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "$EXIT_USAGE" "unknown argument '$1' (see --help)" ;;
  esac
done
validate_name "$name"
[[ $namespace =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "$EXIT_USAGE" "--namespace '$namespace': expected a DNS label"

provider=none
record="$(record_path "$name")"
if [[ -f $record ]]; then
  read_record "$record"
  provider=$(record_value KVERIFY_PROVIDER none)
  ((kubeconfig_set)) || kubeconfig=$(record_value KVERIFY_KUBECONFIG)
  [[ -n $context ]] || context=$(record_value KVERIFY_CONTEXT)
  [[ -n $nodes ]] || nodes=$(record_value KVERIFY_NODES)
  [[ -n $image ]] || image=$(record_value KVERIFY_IMAGE)
  log "cluster '$name' from $record ($provider)"
fi
nodes=${nodes:-1}
image=${image:-$KVERIFY_DEFAULT_IMAGE}
validate_count --nodes "$nodes"
if [[ -n $kubeconfig && ! -f $kubeconfig ]] && ((!DRY_RUN)); then
  ((kubeconfig_set)) && die "$EXIT_USAGE" "--kubeconfig $kubeconfig: no such file"
  die "$EXIT_USAGE" "kubeconfig $kubeconfig (recorded in $record) does not exist; was the cluster torn down? Run scripts/setup.sh again"
fi
require_tool kubectl "every check uses it"
kubectl_args "$kubeconfig" "$context"

if ((DRY_RUN)); then
  run "${KUBECTL[@]}" get --raw /readyz --request-timeout=10s
  run "${KUBECTL[@]}" get nodes -o "jsonpath=<name, Ready status and images of each node>"
  for permission in "${CLUSTER_PERMISSIONS[@]}"; do
    # shellcheck disable=SC2086  # "VERB RESOURCE" splits into two arguments on purpose
    run "${KUBECTL[@]}" auth can-i $permission --quiet
  done
  for permission in "${NAMESPACED_PERMISSIONS[@]}"; do
    # shellcheck disable=SC2086
    run "${KUBECTL[@]}" auth can-i $permission --namespace "$namespace" --quiet
  done
  exit 0
fi

failed=0
report() {  # report ok|warn|FAIL CHECK DETAIL
  printf '%-5s %-12s %s\n' "$1" "$2" "$3"
  [[ $1 == FAIL ]] && failed=$((failed + 1))
  return 0
}
target="context '${context:-$(kubectl "${KUBECTL[@]:1}" config current-context 2>/dev/null || printf '<none>')}'"

# 1. reachable: without it nothing else can be checked.
if ! output="$("${KUBECTL[@]}" get --raw /readyz --request-timeout=10s 2>&1)"; then
  report FAIL reachable "$target does not answer: ${output//$'\n'/ }"
  exit "$EXIT_UNREACHABLE"
fi
report ok reachable "$target answers /readyz"

# 2. nodes: one line per node, "name<TAB>Ready status<TAB>image names".
template='{range .items[*]}{.metadata.name}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\t"}{range .status.images[*]}{.names[*]}{" "}{end}{"\n"}{end}'
output="$("${KUBECTL[@]}" get nodes -o "jsonpath=$template" 2>&1)" ||
  die "$EXIT_UNREACHABLE" "$target: 'kubectl get nodes' failed: $output"
total=0 ready=0 not_ready=() missing_image=()
# An image loaded as NAME:TAG is listed by the kubelet under its normalised docker.io name.
[[ ${image##*/} == *:* || $image == *@* ]] || image+=":latest"
wanted=" $image docker.io/$image docker.io/library/$image "
while IFS=$'\t' read -r node status images; do
  [[ -z $node ]] && continue
  total=$((total + 1))
  if [[ $status == True ]]; then ready=$((ready + 1)); else not_ready+=("$node (Ready=${status:-unknown})"); fi
  found=0
  for candidate in $images; do
    [[ $wanted == *" $candidate "* ]] && found=1 && break
  done
  ((found)) || missing_image+=("$node")
done <<<"$output"
if ((ready >= nodes && ${#not_ready[@]} == 0)); then
  report ok nodes "$ready of $total node(s) Ready (expected at least $nodes)"
else
  report FAIL nodes "$ready of $total node(s) Ready, expected at least $nodes${not_ready[*]:+; not Ready: ${not_ready[*]}}"
fi

# 3. the demo app image on every node.
if ((total > 0 && ${#missing_image[@]} == 0)); then
  report ok image "$image present on all $total node(s)"
elif [[ $provider == existing || $provider == none ]]; then
  report warn image "$image not on node(s): ${missing_image[*]:-all}; the cluster must be able to pull it"
else
  report FAIL image "$image not on node(s): ${missing_image[*]:-all}; load it with scripts/setup.sh or '$provider' image loading"
fi

# 4. permissions kverify needs.
denied=()
for permission in "${CLUSTER_PERMISSIONS[@]}"; do
  # shellcheck disable=SC2086  # "VERB RESOURCE" splits into two arguments on purpose
  "${KUBECTL[@]}" auth can-i $permission --quiet 2>/dev/null || denied+=("$permission")
done
for permission in "${NAMESPACED_PERMISSIONS[@]}"; do
  # shellcheck disable=SC2086
  "${KUBECTL[@]}" auth can-i $permission --namespace "$namespace" --quiet 2>/dev/null || denied+=("$permission")
done
checked=$((${#CLUSTER_PERMISSIONS[@]} + ${#NAMESPACED_PERMISSIONS[@]}))
if ((${#denied[@]} == 0)); then
  report ok permissions "all $checked verbs kverify uses are allowed (namespace $namespace)"
else
  report FAIL permissions "denied in namespace $namespace: $(printf '%s, ' "${denied[@]}" | sed 's/, $//')"
fi

if ((failed > 0)); then
  printf 'health: %d of 4 checks failed\n' "$failed"
  exit "$EXIT_FAILED"
fi
printf 'health: ok\n'
