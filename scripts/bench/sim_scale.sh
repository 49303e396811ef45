#!/usr/bin/env bash
# kverify sim at scale: a DaemonSet of stub exporters (no processes: sim/runtime.yaml's stub runtime) on an N-node
# sim, timed from `kubectl apply` to every pod Ready as `kubectl rollout status` sees it, with the sim's peak RSS.
# Usage: scripts/bench/sim_scale.sh [NODES] (default 500). Prints a markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck disable=SC1091  # lib.sh is checked on its own
source scripts/bench/lib.sh

nodes=${1:-500}
work=$(mktemp -d)
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -z "${KVERIFY:-}" ]; then build_release; fi
export KUBECONFIG="$work/kubeconfig" KUBECACHEDIR="$work/cache"

start=$(date +%s.%N)
start_sim "$nodes" "$KUBECONFIG" "$work"
sim_pid=${SIM_PID:?}
up=$(date +%s.%N)

cat >"$work/ds.yaml" <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: stub, namespace: default}
spec:
  selector: {matchLabels: {app: stub}}
  template:
    metadata: {labels: {app: stub}}
    spec:
      containers:
      - name: exporter
        image: kverify/stub-exporter:1
        ports: [{containerPort: 9091, name: metrics}]
        readinessProbe: {httpGet: {path: /metrics, port: metrics}, periodSeconds: 2}
YAML
applied=$(date +%s.%N)
kubectl apply --server-side -f "$work/ds.yaml" >/dev/null
kubectl rollout status ds/stub --timeout=600s >/dev/null
ready=$(date +%s.%N)
count=$(kubectl get ds stub -o jsonpath='{.status.numberReady}')
rss=$(awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$sim_pid/status")

echo
echo "| nodes | sim start to kubeconfig (s) | apply → all $count pods Ready (s) | sim peak RSS (MiB) |"
echo "|---|---|---|---|"
awk -v n="$nodes" -v s="$start" -v u="$up" -v a="$applied" -v r="$ready" -v m="$rss" \
  'BEGIN{printf "| %d | %.2f | %.2f | %d |\n", n, u-s, r-a, m}'
