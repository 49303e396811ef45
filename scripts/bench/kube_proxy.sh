#!/usr/bin/env bash
# Benchmark: proxy GETs to distinct pods through the API server (GET …/pods/NAME:9091/proxy/metrics), kverify's
# REST backend (libcurl, one connection pool) against one `kubectl get --raw` process per request — the way the
# upstream scripts reach pods. Starts its own `kverify sim up` with stub pods (image kverify/stub-exporter:1: the
# sim serves sim/stub-metrics.prom in-process on every declared port, so no process per pod) and stops it on exit.
#
# Usage: scripts/bench/kube_proxy.sh [--pods N] [--nodes N] [--requests N] [--http1-only] [--debug]
#   --pods N      replicas of the stub Deployment (default 1000)
#   --nodes N     sim nodes (default 51: the tainted control plane + 50 workers)
#   --requests N  GETs per run (default 1000; each pod once when N <= pods)
#   --http1-only  start the sim with `sim up --http1-only` (no HTTP/2 offered), to compare with h2
#   --debug       use the debug build instead of building release (faster to build, slower server)
# Prints a markdown table. Needs swift, kubectl (1.32 dispatcher), python3.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

pods=1000 nodes=51 requests=1000 config=release protocol_flag="" protocol="HTTP/2 offered"
while [ $# -gt 0 ]; do
  case "$1" in
    --pods) pods=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --debug) config=debug; shift ;;
    --http1-only) protocol_flag=--http1-only protocol="HTTP/1.1 only"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "kube_proxy.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for tool in swift kubectl python3; do
  command -v "$tool" >/dev/null || { echo "kube_proxy.sh: $tool not found; run scripts/bootstrap.sh" >&2; exit 2; }
done

if [ "$config" = release ]; then
  echo "bench: building kverify and kverify-bench (release)" >&2
  swift build -c release --product kverify >/dev/null
  # The sim's pods need the network shim beside the binary (kverify sim looks for it there).
  swift build -c release --product KVerifySimNet >/dev/null
  swift build -c release --package-path Benchmarks --product kverify-bench >/dev/null
  bin=.build/release bench_bin=Benchmarks/.build/release
else
  echo "bench: building kverify and kverify-bench (debug)" >&2
  swift build --product kverify >/dev/null
  swift build --product KVerifySimNet >/dev/null
  swift build --package-path Benchmarks --product kverify-bench >/dev/null
  bin=.build/debug bench_bin=Benchmarks/.build/debug
fi

workdir=$(mktemp -d)
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then
    kill -INT "$sim_pid" 2>/dev/null || true   # the sim stops its pods and removes its state on SIGINT
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

export KUBECONFIG=$workdir/kubeconfig KUBECACHEDIR=$workdir/kubecache
# shellcheck disable=SC2086  # empty or one flag
"$bin/kverify" sim up --nodes "$nodes" --kubeconfig "$KUBECONFIG" $protocol_flag >"$workdir/sim.out" 2>"$workdir/sim.log" &
sim_pid=$!
for _ in $(seq 600); do
  grep -q . "$workdir/sim.out" 2>/dev/null && break
  kill -0 "$sim_pid" 2>/dev/null || { echo "kube_proxy.sh: kverify sim up exited:" >&2; tail -5 "$workdir/sim.log" >&2; exit 3; }
  sleep 0.1
done
[ "$(kubectl get --raw /healthz)" = ok ] || { echo "kube_proxy.sh: the sim does not answer" >&2; exit 3; }

start=$(date +%s.%N)
kubectl apply --server-side -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: stub, namespace: bench}
spec:
  replicas: $pods
  selector: {matchLabels: {app: stub}}
  template:
    metadata: {labels: {app: stub}}
    spec:
      containers:
      - name: exporter
        image: kverify/stub-exporter:1
        ports: [{name: metrics, containerPort: 9091}]
YAML
kubectl rollout status deployment/stub -n bench --timeout=900s >/dev/null
ready_seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
ready=$(kubectl get pods -n bench -l app=stub -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
spread=$(kubectl get pods -n bench -l app=stub -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort | uniq -c | awk '{print $1}' | sort -n | sed -n '1p;$p' | paste -sd- -)
[ "$ready" -eq "$pods" ] || { echo "kube_proxy.sh: $ready of $pods pods Ready" >&2; exit 3; }
echo "bench: $pods stub pods Ready on $((nodes - 1)) workers (pods per node: $spread) after ${ready_seconds}s" >&2

run() {  # backend concurrency → one JSON line
  "$bench_bin/kverify-bench" --kubeconfig "$KUBECONFIG" --namespace bench --selector app=stub --port 9091 --path metrics \
    --requests "$requests" --backend "$1" --concurrency "$2" --expect "# TYPE gunicorn_worker_requests_total counter"
}
results=$workdir/results.jsonl
for spec in "rest 1" "kubectl 1" "rest 16" "kubectl 2"; do
  # shellcheck disable=SC2086  # two words on purpose
  echo "bench: $spec…" >&2; run $spec | tee -a "$results" >&2
done

python3 - "$results" "$pods" "$requests" "$ready_seconds" "$protocol" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
pods, requests, ready, protocol = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
rest1 = next(r for r in rows if r["backend"] == "rest" and r["concurrency"] == 1)
print(f"{requests} proxy GETs of /metrics to {min(int(pods), int(requests))} distinct stub pods ({pods} Ready after {ready} s; sim: {protocol})\n")
print("| client | in flight | wall (s) | median (ms) | p95 (ms) | requests/s | vs REST sequential (wall) |")
print("|---|---|---|---|---|---|---|")
names = {"rest": "kverify REST backend (libcurl)", "kubectl": "`kubectl get --raw` per request"}
for r in rows:
    print(f"| {names[r['backend']]} | {r['concurrency']} | {r['wall_s']:.2f} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | "
          f"{r['requests'] / r['wall_s']:.0f} | {r['wall_s'] / rest1['wall_s']:.1f}× |")
failures = sum(r["failures"] for r in rows)
print(f"\nFailed requests: {failures}; bytes per run: {rows[0]['bytes']}")
PY
