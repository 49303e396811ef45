#!/usr/bin/env bash
# Reproduces the Gunicorn Prometheus Exporter's master deadlock: PrometheusMaster.handle_chld (gunicorn's SIGCHLD
# handler) puts a metric on a queue.Queue, whose lock is not reentrant, so a SIGCHLD that lands during that put
# deadlocks the master's main thread. Starts Redis and the demo app (manifests/app, sidecar mode) on free local
# ports, sends the master N SIGCHLDs, then SIGTTIN: a live master forks a third worker, a deadlocked one
# never does (within 15 s). Prints one line per try and the tally; stops everything it started, also on Ctrl-C.
#
# Usage: scripts/testing/sigchld-flood.sh [--tries N] [--signals N] [--unpatched]
#   --tries N     how many fresh masters to flood (default 3)
#   --signals N   SIGCHLDs per flood (default 200000)
#   --unpatched   EXPORTER_SIGCHLD_PATCH=off: the exporter's own queue, without the demo app's reentrant one
# Exit 0 when every master survived, 1 when any deadlocked. Needs the bootstrap's .venv and redis-server.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
tries=3 signals=200000 patch=on
while [ $# -gt 0 ]; do
  case "$1" in
    --tries) tries=$2; shift 2 ;;
    --signals) signals=$2; shift 2 ;;
    --unpatched) patch=off; shift ;;
    *) echo "sigchld-flood: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

scratch=$(mktemp -d -t kverify-flood.XXXXXX)
pids=()
cleanup() {
  for pid in ${pids[@]+"${pids[@]}"}; do
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_port PORT WHAT LOG: until PORT accepts a connection (10 s), else says which process did not come up, with its log.
wait_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "sigchld-flood: $2 did not listen on 127.0.0.1:$1 within 10 s; its log:" >&2
  tail -20 "$3" >&2
  exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$scratch/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port" redis-server "$scratch/redis.log"

deadlocked=0
for try in $(seq 1 "$tries"); do
  app_port=$(free_port) metrics_port=$(free_port)
  (cd "$scratch" && EXPORTER_SIGCHLD_PATCH=$patch EXPORTER_MODE=sidecar REDIS_ENABLED=true REDIS_HOST=127.0.0.1 \
    REDIS_PORT=$redis_port REDIS_KEY_PREFIX=flood-$try PROMETHEUS_MULTIPROC_DIR='' PROMETHEUS_METRICS_PORT=$metrics_port \
    PROMETHEUS_BIND_ADDRESS=127.0.0.1 APP_BIND=127.0.0.1:$app_port GUNICORN_WORKERS=2 \
    exec "$repo/.venv/bin/gunicorn" -c "$repo/manifests/app/gunicorn_conf.py" --pythonpath "$repo/manifests/app" \
      app:application >"$scratch/gunicorn-$try.log" 2>&1) &
  master=$!
  pids=("$redis_pid" "$master")
  wait_port "$app_port" "gunicorn (try $try)" "$scratch/gunicorn-$try.log"
  for _ in $(seq 1 50); do [ "$(pgrep -c -P "$master")" -ge 2 ] && break; sleep 0.1; done

  python3 -c 'import os, signal, sys
pid, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n): os.kill(pid, signal.SIGCHLD)' "$master" "$signals"
  kill -TTIN "$master"
  # A live master forks within milliseconds; 15 s leaves room for a loaded machine.
  alive=no
  for _ in $(seq 1 150); do [ "$(pgrep -c -P "$master")" -ge 3 ] && { alive=yes; break; }; sleep 0.1; done
  if [ $alive = yes ]; then
    echo "try $try: master $master answered SIGTTIN after $signals SIGCHLDs"
  else
    deadlocked=$((deadlocked + 1))
    echo "try $try: master $master did not answer SIGTTIN within 15 s after $signals SIGCHLDs (wchan $(cat "/proc/$master/wchan" 2>/dev/null || echo '?'))"
  fi
  pkill -KILL -P "$master" 2>/dev/null || true
  kill -KILL "$master" 2>/dev/null || true
  wait "$master" 2>/dev/null || true
  pids=("$redis_pid")
done
echo "patch $patch: $deadlocked of $tries masters deadlocked"
[ "$deadlocked" -eq 0 ]
