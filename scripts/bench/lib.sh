#!/usr/bin/env bash
# Shared helpers for the benchmark scripts (sourced, not run).

# measure RUNS OUTFILE -- COMMAND...: runs COMMAND RUNS times, keeps the best wall time (s) and the peak RSS
# (MiB, the maximum over runs) in the globals BEST_SECONDS and PEAK_MIB. The command's exit status must be 0
# (or listed in ACCEPT_STATUS, space-separated) or the benchmark stops: a failing peer is not a fast peer.
measure() {
  local runs=$1 outfile=$2; shift 3
  local timing status wall kib
  BEST_SECONDS=""; PEAK_MIB=0
  timing=$(mktemp)
  for _ in $(seq "$runs"); do
    status=0
    /usr/bin/time -f '%e %M' -o "$timing" "$@" >"$outfile" 2>&1 || status=$?
    if [ "$status" -ne 0 ] && [[ " ${ACCEPT_STATUS:-} " != *" $status "* ]]; then
      echo "bench: '$*' exited $status:" >&2; tail -5 "$outfile" >&2; rm -f "$timing"; exit 1
    fi
    read -r wall kib < <(tail -n 1 "$timing")
    if [ -z "$BEST_SECONDS" ] || awk -v a="$wall" -v b="$BEST_SECONDS" 'BEGIN{exit !(a<b)}'; then BEST_SECONDS=$wall; fi
    PEAK_MIB=$(awk -v a="$PEAK_MIB" -v k="$kib" 'BEGIN{m=k/1024; print (m>a)?m:a}')
  done
  rm -f "$timing"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b <= 0) b = 0.001; printf "%.1f", a/b }'; }

build_release() {
  echo "bench: building kverify (release)" >&2
  swift build -c release --product kverify >/dev/null
  # The sim's pods need the network shim beside the binary (kverify sim looks for it there).
  swift build -c release --product KVerifySimNet >/dev/null
  # shellcheck disable=SC2034  # used by the scripts that source this file
  KVERIFY=.build/release/kverify
}

# start_sim NODES KUBECONFIG DIR: starts `kverify sim up` in the background and returns once it printed its
# kubeconfig path (the API answers); its pid is in SIM_PID. DIR holds its output. Stop it with `kill "$SIM_PID"`.
start_sim() {
  local nodes=$1 kubeconfig=$2 dir=$3
  rm -f "$dir/sim.out"
  "$KVERIFY" sim up --nodes "$nodes" --kubeconfig "$kubeconfig" >"$dir/sim.out" 2>"$dir/sim.err" &
  SIM_PID=$!
  until [ -s "$dir/sim.out" ]; do
    kill -0 "$SIM_PID" 2>/dev/null || { echo "bench: sim exited:" >&2; cat "$dir/sim.err" >&2; return 1; }
    sleep 0.05
  done
}
