#!/usr/bin/env bash
# Benchmark for `kverify metrics`: parse + generic rules on a gunicorn-style text exposition (default 300,000
# samples, 30+ MB), against `promtool check metrics` and Python prometheus_client's parser, in one run.
# Usage: scripts/bench/metrics.sh [--samples N] [--runs N]. Prints a markdown table with ratios and peak RSS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck disable=SC1091  # lib.sh is checked on its own
source scripts/bench/lib.sh

samples=300000; runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --samples) samples=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "metrics.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
exposition="$work/exposition.prom"
python3 scripts/bench/gen_exposition.py --samples "$samples" "$exposition"
size_mb=$(awk -v b="$(stat -c %s "$exposition")" 'BEGIN{printf "%.1f", b/1e6}')
build_release

# Correctness first: every tool must see every sample.
seen=$("$KVERIFY" metrics --file "$exposition" --format text --output json | python3 -c 'import json,sys; r=json.load(sys.stdin); print([f["observed"] for f in r["findings"] if f["checkID"]=="exposition.parsed"][0])')
case "$seen" in *" $samples samples") ;; *) echo "bench: kverify saw '$seen', expected $samples samples" >&2; exit 1 ;; esac

measure "$runs" "$work/kverify.out" -- "$KVERIFY" metrics --file "$exposition" --format text --quiet
kverify_s=$BEST_SECONDS; kverify_mib=$PEAK_MIB
# promtool exits 3 when its lint finds problems; it has parsed everything by then.
ACCEPT_STATUS="3" measure "$runs" "$work/promtool.out" -- sh -c "promtool check metrics < '$exposition'"
promtool_s=$BEST_SECONDS; promtool_mib=$PEAK_MIB
py_runs=$(( runs < 3 ? runs : 3 ))
measure "$py_runs" "$work/python.out" -- .venv/bin/python -c "
import sys
from prometheus_client.parser import text_string_to_metric_families
n = sum(len(f.samples) for f in text_string_to_metric_families(open(sys.argv[1]).read()))
assert n == int(sys.argv[2]), n
" "$exposition" "$samples"
python_s=$BEST_SECONDS; python_mib=$PEAK_MIB

echo
echo "### kverify metrics: $samples samples, $size_mb MB (best of $runs; python best of $py_runs)"
echo
echo "| tool | wall (s) | peak RSS (MiB) | kverify is … faster |"
echo "|---|---|---|---|"
printf '| kverify metrics (parse + generic rules) | %s | %.0f | — |\n' "$kverify_s" "$kverify_mib"
printf '| promtool check metrics | %s | %.0f | %s× |\n' "$promtool_s" "$promtool_mib" "$(ratio "$promtool_s" "$kverify_s")"
printf '| prometheus_client text_string_to_metric_families | %s | %.0f | %s× |\n' "$python_s" "$python_mib" "$(ratio "$python_s" "$kverify_s")"
