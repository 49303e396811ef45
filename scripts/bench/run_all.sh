#!/usr/bin/env bash
# Runs every benchmark in one go (make bench). Each prints a markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
echo "# machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%Y-%m-%d)"
for bench in metrics.sh redis_audit.sh kube_proxy.sh sim_scale.sh readiness.sh pattern_scale.sh; do
  [ -f "$bench" ] && bash "$bench"
done
