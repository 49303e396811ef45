#!/usr/bin/env bash
# Builds the libFuzzer harnesses in Fuzz/ (a separate package: the root build never compiles them) with
# -sanitize=fuzzer,address and runs each for FUZZ_SECONDS (default 60), seeded from the project's fixtures.
#   scripts/fuzz.sh                      every harness, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh FuzzPromText FuzzRESP
#   FUZZ_SECONDS=600 FUZZ_JOBS=2 scripts/fuzz.sh   every harness, two at a time
# A crash leaves its input in Fuzz/artifacts/<harness>-crash-…; the script exits 1. Corpora grow in
# Fuzz/corpus/<harness> (not committed). Summary: Fuzz/artifacts/summary.txt.
set -euo pipefail

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    cat <<'USAGE'
Usage: scripts/fuzz.sh [harness...]
  Builds the libFuzzer harnesses in Fuzz/ with -sanitize=fuzzer,address and runs each (all by default:
  FuzzPromText FuzzRESP FuzzKubeConfig FuzzPEM FuzzManifest FuzzWatchLine FuzzRuleFile).
  FUZZ_SECONDS  seconds per harness (default 60)
  FUZZ_CONFIG   debug (default) or release
  FUZZ_JOBS     harnesses run at once (default 1; each uses one core)
  Crash inputs: Fuzz/artifacts/<harness>-crash-*; summary: Fuzz/artifacts/summary.txt; exit 1 on a failure.
USAGE
    exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/Fuzz"
seconds="${FUZZ_SECONDS:-60}"
config="${FUZZ_CONFIG:-debug}"
all=(FuzzPromText FuzzRESP FuzzKubeConfig FuzzPEM FuzzManifest FuzzWatchLine FuzzRuleFile)
if [ "$#" -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi

# shellcheck disable=SC2054 # the commas belong to the sanitizer lists, not array separators
flags=(-c "$config" -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)
swift build --package-path "$fuzz" "${flags[@]}"
bin="$(swift build --package-path "$fuzz" "${flags[@]}" --show-bin-path)"

# Seeds: the committed ones in Fuzz/Seeds plus the project's own fixtures.
seeds="$fuzz/.seeds"
rm -rf "$seeds"
mkdir -p "$seeds" "$fuzz/artifacts"
cp -R "$fuzz/Seeds/." "$seeds/"
mkdir -p "$seeds/FuzzPromText" "$seeds/FuzzPEM" "$seeds/FuzzManifest"
cp "$root"/Tests/PromTextTests/Fixtures/* "$seeds/FuzzPromText/"
if [ -d "$root/../shared/corpus/openmetrics" ]; then
    for case in "$root"/../shared/corpus/openmetrics/*/; do
        [ -f "$case/metrics" ] && cp "$case/metrics" "$seeds/FuzzPromText/om-$(basename "$case")"
    done
fi
cp "$root"/manifests/*.yaml "$seeds/FuzzManifest/"
cp "$root"/manifests/*.yaml "$seeds/FuzzRuleFile/" 2>/dev/null || true
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fuzz \
    -keyout "$seeds/FuzzPEM/key.pem" -out "$seeds/FuzzPEM/cert.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$seeds/FuzzPEM/ec-key.pem" 2>/dev/null
cat "$seeds/FuzzPEM/cert.pem" "$seeds/FuzzPEM/cert.pem" > "$seeds/FuzzPEM/bundle.pem"

summary="$fuzz/artifacts/summary.txt"
: > "$summary"

# One harness: its log in Fuzz/artifacts/<harness>.log, its line in the summary; non-zero when it failed.
run_harness() {
    local harness="$1" corpus="$fuzz/corpus/$1" log="$fuzz/artifacts/$1.log" failed=0
    mkdir -p "$corpus"
    echo "== $harness: ${seconds}s"
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: one using over 2 GiB is a memory bomb.
    # Leak detection off (-detect_leaks=0 per input, ASAN_OPTIONS at exit): LeakSanitizer reports Foundation's
    # own allocations (Data(contentsOf:) of an empty file leaks 4 KiB), nothing kverify can fix; ASan's
    # memory-error checks stay on.
    if ! SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$bin/$harness" "$corpus" "$seeds/$harness" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
        -artifact_prefix="$fuzz/artifacts/$harness-" >"$log" 2>&1; then
        failed=1
        echo "   FAILED: see $log and $fuzz/artifacts/$harness-*"
    fi
    local runs speed cov units line
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
    units="$(grep -oE 'corp: [0-9]+/[0-9]+[bKM]b?' "$log" | tail -1)"
    line="$harness: ${runs:-?} runs (${speed:-?}/s), ${cov:-no coverage line}, ${units:-}"
    echo "   $line"
    echo "$line" >> "$summary"
    return "$failed"
}

# FUZZ_JOBS harnesses at a time (default 1): each libFuzzer process uses one core.
jobs="${FUZZ_JOBS:-1}"
status=0
pids=()
for harness in "${harnesses[@]}"; do
    run_harness "$harness" &
    pids+=("$!")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit "$status"
