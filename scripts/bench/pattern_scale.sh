#!/usr/bin/env bash
# Verification overhead after readiness: `kverify daemonset` on an N-node sim whose app pods use the stub runtime
# (no processes; a canned exposition on 8000 and 9091), timed per phase from the JSON report, with kverify's own
# peak RSS (the sim runs as a separate process). The stub pods write nothing to Redis, so the run's verdict is a
# Redis failure by design; the phases still run and are what is measured. The lifecycle phase is skipped: it signals
# gunicorn processes, which stub pods do not have, so it would only wait out its timeouts (not counted anyway).
# Usage: scripts/bench/pattern_scale.sh [NODES...] (default: 200 500).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck disable=SC1091  # lib.sh is checked on its own
source scripts/bench/lib.sh
[ $# -gt 0 ] || set -- 200 500
if [ -z "${KVERIFY:-}" ]; then build_release; fi
work=$(mktemp -d)
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo
echo "| nodes | app pods | wait (s) | after readiness: traffic + scrape + logs + redis (s) | of which traffic / scrape / logs / redis (s) | cleanup (s) | kverify peak RSS (MiB) |"
echo "|---|---|---|---|---|---|---|"
for nodes in "$@"; do
  kubeconfig="$work/kubeconfig-$nodes"
  start_sim "$nodes" "$kubeconfig" "$work"
  sim_pid=${SIM_PID:?}
  status=0
  /usr/bin/time -f '%e %M' -o "$work/time" "$KVERIFY" daemonset --kubeconfig "$kubeconfig" --nodes "$nodes" \
    --image-app kverify/stub-exporter:1 --skip-expiry --skip-lifecycle --timeout 300s --output json >"$work/report.json" 2>"$work/run.err" || status=$?
  if [ "$status" -gt 1 ]; then echo "bench: kverify exited $status:" >&2; tail -5 "$work/run.err" >&2; exit 1; fi
  python3 - "$work/report.json" "$work/time" "$nodes" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
wall, kib = open(sys.argv[2]).read().split()[-2:]
phases = {p["name"]: p["seconds"] for p in report["phases"]}
after = sum(phases.get(name, 0) for name in ("traffic", "scrape", "logs", "redis"))
pods = sum(1 for f in report["findings"] if f["checkID"] == "node.metrics")
split = " / ".join(f"{phases.get(name, 0):.2f}" for name in ("traffic", "scrape", "logs", "redis"))
print(f"| {sys.argv[3]} | {pods} | {phases.get('wait', 0):.2f} | {after:.2f} | {split} | {phases.get('cleanup', 0):.2f} | {int(kib) / 1024:.0f} |")
PY
  kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
done
