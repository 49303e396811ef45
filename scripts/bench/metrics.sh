#!/usr/bin/env bash
# Benchmark for `kverify metrics`: parse + generic rules on a gunicorn-style text exposition (default 300,000
# samples, 30+ MB), against `promtool check metrics` and Python prometheus_client's parser, in one run.
# Usage: scripts/bench/metrics.sh [--samples N] [--runs N]. Prints a markdown table with ratios and peak RSS.
#        scripts/bench/metrics.sh --callgrind [--samples N]: instructions per line of the parser alone and of
#        parse + generic rules (valgrind cannot read the release binary's debug info, so a small driver is built
#        with swiftc -O from Sources/PromText, Sources/Findings and the generic rules of Sources/MetricRules).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck disable=SC1091  # lib.sh is checked on its own
source scripts/bench/lib.sh

samples=300000; runs=5; callgrind=no
while [ $# -gt 0 ]; do
  case "$1" in
    --samples) samples=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --callgrind) callgrind=yes; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "metrics.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
exposition="$work/exposition.prom"
python3 scripts/bench/gen_exposition.py --samples "$samples" "$exposition"

if [ "$callgrind" = yes ]; then
  cat >"$work/main.swift" <<'SWIFT'
import Findings
import Foundation
import MetricRules
import PromText
// driver FILE parse|rules: parses FILE in one chunk (and runs the generic rules), prints the sample count.
let bytes = Array(FileManager.default.contents(atPath: CommandLine.arguments[1])!)
let exposition = try ExpositionParser.parse(bytes, format: .text)
let findings = CommandLine.arguments[2] == "rules" ? RuleEngine().evaluate(exposition) : []
print(exposition.sampleCount, findings.count)
SWIFT
  (
    cd "$work"
    flags=(-O -wmo -parse-as-library -emit-module -emit-library -static -I .)
    swiftc "${flags[@]}" -module-name PromText -o libPromText.a "$OLDPWD"/Sources/PromText/*.swift
    swiftc "${flags[@]}" -module-name Findings -o libFindings.a "$OLDPWD"/Sources/Findings/*.swift
    swiftc "${flags[@]}" -module-name MetricRules -o libMetricRules.a \
      "$OLDPWD"/Sources/MetricRules/{GenericRules,RuleEngine,MetricRule,CheckIDs}.swift
    swiftc -O -I . -L . -o driver main.swift -lMetricRules -lFindings -lPromText
  ) 2>&1 | grep -v warning >&2 || true
  printf 'a 1\n' >"$work/one.prom"
  lines=$(wc -l <"$exposition")
  instructions() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | awk '/refs:/{gsub(",", "", $4); print $4}'; }
  echo
  echo "### Instructions per line (callgrind), $samples samples, $lines lines"
  echo
  echo "| phase | instructions | per line |"
  echo "|---|---|---|"
  for phase in parse rules; do
    total=$(instructions "$work/driver" "$exposition" "$phase")
    empty=$(instructions "$work/driver" "$work/one.prom" "$phase")
    awk -v p="$phase" -v t="$total" -v e="$empty" -v n="$lines" \
      'BEGIN{printf "| %s | %d | %.0f |\n", (p == "parse" ? "parse" : "parse + generic rules"), t - e, (t - e) / n}'
  done
  exit 0
fi
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
