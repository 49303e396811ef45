#!/usr/bin/env bash
# Readiness detection latency: from the instant the sim's store makes the rollout complete (every pod Ready and
# the workloads' statuses say so) to kverify's verdict (PatternRun.wait over the REST backend), and, in the same
# runs, from the DaemonSet's completed status to `kubectl rollout status` exiting. Stub app pods (no processes),
# real readiness probes, real Redis. Also, per run, each waiter's time from the apply (both start at that instant)
# and how far kverify's verdict came after kubectl's exit: the same-run view at fleet size
# (`scripts/bench/readiness.sh 500 3`). Usage: scripts/bench/readiness.sh [NODES] [RUNS] (default 10 nodes, 15 runs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
nodes=${1:-10}
runs=${2:-15}
echo "bench: building kverify-readiness-bench (release)" >&2
swift build -c release --package-path Benchmarks --product kverify-readiness-bench >/dev/null
swift build -c release --product KVerifySimNet >/dev/null
out=$(mktemp)
trap 'rm -f "$out" "$out.err"' EXIT
KVERIFY_SIM_SHIM=$PWD/.build/release/libKVerifySimNet.so Benchmarks/.build/release/kverify-readiness-bench --nodes "$nodes" --runs "$runs" 2>"$out.err" | tee "$out" >&2 \
  || { echo "bench: kverify-readiness-bench failed:" >&2; grep -v ' info ' "$out.err" >&2; exit 1; }
python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{\"run\"")]
def row(name, key):
    values = sorted(r[key] for r in runs)
    p95 = values[min(len(values) - 1, int(round(0.95 * len(values) + 0.5)) - 1)]
    print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p95:.1f} | {values[-1]:.1f} |")
print()
print(f"| waiter ({runs[0]['pods']} app pods + Redis) | runs | median (ms) | p95 (ms) | max (ms) |")
print("|---|---|---|---|---|")
row("kverify rollout wait (REST watches, kstatus-strict)", "kverify_ms")
row("kubectl rollout status ds/…", "kubectl_rollout_status_ms")
print()
print("Same run, from the apply (both waiters started at that instant):")
print()
print("| from the apply | runs | median (ms) | p95 (ms) | max (ms) |")
print("|---|---|---|---|---|")
row("kverify's wait verdict", "kverify_from_apply_ms")
row("`kubectl rollout status` exit", "kubectl_from_apply_ms")
row("kverify's verdict after kubectl's exit (negative: before)", "kverify_after_kubectl_ms")
PY
