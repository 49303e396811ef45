#!/usr/bin/env bash
# kverify's demo: first the two deployment patterns end to end on kverify's embedded simulated cluster (3 nodes,
# real redis-server and gunicorn + exporter processes in the pods), then the exporter on its own: a real
# redis-server and the demo app under gunicorn, verified with `kverify metrics` and `kverify redis`.
# Everything it starts is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in
  -h|--help)
    cat <<'USAGE'
Usage: scripts/demo.sh

1. `kverify daemonset --nodes 3 --sim` and `kverify sidecar --nodes 3 --sim`: each starts an embedded simulated
   cluster, applies the pattern, waits for every pod, sends traffic, scrapes and judges every pod's metrics per
   node, audits Redis TTLs and watches every key expire, deletes what it created and stops the cluster.
2. Starts a real redis-server and the demo app (gunicorn + Gunicorn Prometheus Exporter, Redis TTL 5 s) on free
   loopback ports, sends 40 requests, runs `kverify metrics --profile gunicorn` and `kverify redis
   --expect-expiry`, and stops everything on exit.
`make demo` bootstraps, then runs it. Set DEMO_SKIP_EXPIRY=1 to skip the patterns' key-expiry phase (saves ~1 min).
USAGE
    exit 0 ;;
  "") ;;
  *) echo "demo: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

kverify=.build/debug/kverify
[ -x "$kverify" ] || { echo "demo: $kverify missing; run 'make setup' first" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "demo: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

status=0
expiry=()
[ -n "${DEMO_SKIP_EXPIRY:-}" ] && expiry=(--skip-expiry)
for pattern in daemonset sidecar; do
  echo "== kverify $pattern --nodes 3 --sim ${expiry[*]}"
  "$kverify" "$pattern" --nodes 3 --sim "${expiry[@]}" || status=$?
done

redis_port=$(free_port); app_port=$(free_port); metrics_port=$(free_port)
workdir=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # invoked through the trap
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

echo "== starting redis-server on 127.0.0.1:$redis_port"
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$workdir/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"

echo "== starting the demo app (gunicorn + exporter, Redis TTL 5 s) on 127.0.0.1:$app_port, metrics on :$metrics_port"
app_dir=$PWD/manifests/app
(
  # prometheus_client writes multiprocess .db files into the working directory: keep them out of the repo.
  cd "$workdir"
  APP_BIND="127.0.0.1:$app_port" GUNICORN_WORKERS=2 EXPORTER_MODE=embedded \
    PROMETHEUS_METRICS_PORT="$metrics_port" PROMETHEUS_BIND_ADDRESS=127.0.0.1 PROMETHEUS_MULTIPROC_DIR="" \
    REDIS_ENABLED=true REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port" REDIS_TTL_SECONDS=5 \
    exec setsid "$app_dir/../../.venv/bin/gunicorn" -c "$app_dir/gunicorn_conf.py" --pythonpath "$app_dir" app:application
) >"$workdir/gunicorn.log" 2>&1 &
pids+=($!)
wait_port "$app_port"
wait_port "$metrics_port"

echo "== sending 40 requests"
python3 - "$app_port" <<'PY'
import sys, urllib.request
for _ in range(40):
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=5).read()
PY

echo "== kverify metrics --url http://127.0.0.1:$metrics_port/metrics --profile gunicorn"
"$kverify" metrics --url "http://127.0.0.1:$metrics_port/metrics" --profile gunicorn || status=$?

if grep -qE "^ +redis " <<<"$("$kverify" --help)"; then
  echo "== kverify redis --addr 127.0.0.1:$redis_port --ttl 5 --expect-expiry (traffic for 2 s more, then none)"
  # Traffic while kverify starts observing shows TTLs being refreshed; after it stops every key must expire.
  python3 - "$app_port" <<'PY' &
import sys, time, urllib.request
end = time.monotonic() + 2
while time.monotonic() < end:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=5).read()
    time.sleep(0.1)
PY
  "$kverify" redis --addr "127.0.0.1:$redis_port" --ttl 5 --expect-expiry --expiry-timeout 20s || status=$?
fi
exit "$status"
