#!/usr/bin/env bash
# Benchmark: `kverify redis` auditing 100,000 exporter-shaped keys, against the upstream approach
# (`redis-cli --scan | xargs -n1 redis-cli ttl`), `redis-cli --scan` alone, and redis-benchmark's pipelined
# PTTL ceiling. Starts its own redis-server on a free loopback port and stops it on exit.
#
# Usage: scripts/bench/redis_audit.sh [KEYS] [UPSTREAM_KEYS]
#   KEYS           keys to load and audit (default 100000: half metric, half meta hashes, TTL 300 s)
#   UPSTREAM_KEYS  keys the slow upstream approach is timed on (default 2000; its time is extrapolated; 0 skips
#                  it and the redis-benchmark ceiling, e.g. for a 1,000,000-key memory run)
# Prints a markdown table: wall time, peak RSS, the client's CPU (user + sys) and the server's CPU per run
# (`INFO cpu` before and after the runs, divided by their number); then the server's CPU for the commands alone
# (SCAN, SCAN … TYPE hash, PTTL per key, KEYS), the floor any audit over SCAN stands on. Needs redis-server, redis-cli,
# redis-benchmark, python3, /usr/bin/time, swift.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

keys=${1:-100000}
upstream_keys=${2:-2000}
runs=5
for tool in redis-server redis-cli redis-benchmark python3 swift; do
  command -v "$tool" >/dev/null || { echo "redis_audit.sh: $tool not found; run scripts/bootstrap.sh" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "redis_audit.sh: /usr/bin/time missing (apt package 'time'); run scripts/bootstrap.sh" >&2; exit 2; }

workdir=$(mktemp -d)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$workdir/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$port" ping >/dev/null || { echo "redis_audit.sh: redis-server did not start:" >&2; cat "$workdir/redis.log" >&2; exit 3; }
cli=(redis-cli -h 127.0.0.1 -p "$port")

# Loads N exporter-shaped keys as RESP (HSET + EXPIRE per key) through redis-cli --pipe.
load() {
  python3 - "$1" "$2" <<'PY' | "${cli[@]}" --pipe >/dev/null
import hashlib, sys
total, prefix = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
types = ["counter", "histogram", "gauge_all"]
for i in range(total // 2):
    typ, pid = types[i % 3], 1000 + i % 4
    digest = hashlib.md5(str(i).encode()).hexdigest()
    metric = f"{prefix}:{typ}:{pid}:metric:{digest}"
    meta = f"{prefix}:{typ}:{pid}:meta:{digest}"
    cmd("HSET", metric, "value", "1.0", "timestamp", "0.0", "updated_at", "1700000000.0")
    cmd("EXPIRE", metric, "300")
    cmd("HSET", meta, "original_key", f'["m","m",{{}},"h{i}"]', "created_at", "1700000000.0",
        "typ", typ.split("_")[0], "multiprocess_mode", "all")
    cmd("EXPIRE", meta, "300")
PY
}

# Best (minimum) wall time, its peak RSS and its CPU (user + sys) over $runs runs of a command:
# "seconds kilobytes cpu-seconds". SERVER_CPU is set to the server's CPU seconds per run meanwhile.
server_cpu() { "${cli[@]}" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/{s+=$2} END{printf "%.3f", s}'; }
best_of() {
  local best="" line before
  before=$(server_cpu)
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M %U %S' -o "$workdir/time" "$@" >/dev/null 2>&1 || true
    line=$(tail -1 "$workdir/time" | awk '{printf "%s %s %.2f", $1, $2, $3 + $4}')
    if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$line; fi
  done
  SERVER_CPU=$(awk -v a="$before" -v b="$(server_cpu)" -v n="$runs" 'BEGIN{printf "%.3f", (b-a)/n}')
  echo "$best"
}

# The server's own CPU for the commands an audit cannot avoid, on the same keys (a raw RESP client, so the client's
# speed does not matter): SCAN alone, SCAN with kverify's TYPE filter, one PTTL per key, and KEYS. Prints table rows.
server_floor() {
  python3 - 127.0.0.1 "$port" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
sock = socket.create_connection((host, port))
replies = sock.makefile("rb", buffering=1 << 20)
def send(*commands):
    out = bytearray()
    for args in commands:
        out += b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
def line():
    l = replies.readline()
    if not l.endswith(b"\r\n"): raise SystemExit("redis closed the connection")
    return l[:-2]
def reply():
    l = line(); t = l[:1]
    if t in (b"+", b":"): return l[1:]
    if t == b"-": raise SystemExit(l.decode())
    if t == b"$":
        n = int(l[1:])
        if n < 0: return None
        v = replies.read(n + 2)
        if len(v) != n + 2: raise SystemExit("redis closed the connection")
        return v[:n]
    if t == b"*": return [reply() for _ in range(int(l[1:]))]
def cpu():
    send(("INFO", "cpu")); info = reply().decode()
    return sum(float(x.split(":")[1]) for x in info.split("\r\n") if x.startswith(("used_cpu_user:", "used_cpu_sys:")))
def scan(*extra):
    cursor, keys = b"0", []
    while True:
        send(("SCAN", cursor, "COUNT", 1000) + extra); cursor, page = reply(); keys += page
        if cursor == b"0": return keys
keys = scan("MATCH", "gunicorn:*")
def pttl():
    for i in range(0, len(keys), 1000):
        batch = keys[i:i + 1000]; send(*[("PTTL", k) for k in batch])
        for _ in batch: reply()
def keys_cmd():
    send(("KEYS", "gunicorn:*")); reply()
runs = 5
for name, body in [("SCAN COUNT 1000 MATCH (names only)", lambda: scan("MATCH", "gunicorn:*")),
                   ("SCAN COUNT 1000 MATCH TYPE hash (kverify's scan)", lambda: scan("MATCH", "gunicorn:*", "TYPE", "hash")),
                   ("PTTL per key, pipelined 1000 at a time", pttl),
                   ("KEYS gunicorn:* (blocks the server)", keys_cmd)]:
    before = cpu()
    for _ in range(runs): body()
    print(f"| {name} | {(cpu() - before) / runs:.3f} s |")
PY
}

echo "building kverify (release)..." >&2
swift build -c release --product kverify >/dev/null
kverify=.build/release/kverify

echo "loading $keys keys..." >&2
load "$keys" gunicorn
loaded=$("${cli[@]}" dbsize)
[ "$loaded" -eq "$keys" ] || { echo "redis_audit.sh: loaded $loaded keys, expected $keys" >&2; exit 3; }

echo "timing kverify redis..." >&2
best_of "$kverify" redis --addr "127.0.0.1:$port" --ttl 300 --quiet >"$workdir/best"
read -r kv_s kv_kb kv_cpu <"$workdir/best"
kv_server=$SERVER_CPU
echo "  kverify: ${kv_s} s, ${kv_kb} KB, client CPU ${kv_cpu} s, server CPU ${kv_server} s" >&2
"$kverify" redis --addr "127.0.0.1:$port" --ttl 300 --quiet >"$workdir/verdict" || true

echo "timing redis-cli --scan..." >&2
best_of "${cli[@]}" --scan --pattern 'gunicorn:*' >"$workdir/best"
read -r scan_s scan_kb scan_cpu <"$workdir/best"
scan_server=$SERVER_CPU

echo "measuring the server's CPU per command kind..." >&2
floor_rows=$(server_floor)
floor_table="
Server CPU per audit of $keys keys for the commands alone (\`INFO cpu\`, mean of 5, a raw RESP client):

| commands | server CPU |
|---|---|
$floor_rows"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.1f×", a/b; else print "n/a" }'; }
if [ "$upstream_keys" -eq 0 ]; then
  cat <<TABLE

### Redis audit of $keys exporter-shaped keys (best of $runs, $(nproc) cores, $(redis-server --version | awk '{print $3}'))

| approach | wall time | peak RSS | client CPU | server CPU | vs kverify |
|---|---|---|---|---|---|
| \`kverify redis\` | ${kv_s} s | $((kv_kb / 1024)) MB | ${kv_cpu} s | ${kv_server} s | 1.0× |
| \`redis-cli --scan --pattern 'gunicorn:*'\` (names only) | ${scan_s} s | $((scan_kb / 1024)) MB | ${scan_cpu} s | ${scan_server} s | $(ratio "$scan_s" "$kv_s") |

kverify verdict: $(cat "$workdir/verdict")
$floor_table
TABLE
  exit 0
fi

echo "timing upstream xargs approach on $upstream_keys keys..." >&2
"${cli[@]}" flushdb >/dev/null
load "$upstream_keys" gunicorn
start=$(date +%s.%N)
"${cli[@]}" --scan --pattern 'gunicorn:*' | xargs -n1 "${cli[@]}" ttl >/dev/null
end=$(date +%s.%N)
up_s=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}')
up_extrapolated=$(awk -v t="$up_s" -v n="$upstream_keys" -v k="$keys" 'BEGIN{printf "%.0f", t*k/n}')

echo "timing redis-benchmark PTTL ceiling..." >&2
rps=$(redis-benchmark -h 127.0.0.1 -p "$port" -P 100 -n 1000000 -q PTTL gunicorn:counter:1000:metric:x \
  | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | awk '{print $1}')
ceiling_s=$(awk -v r="$rps" -v k="$keys" 'BEGIN{printf "%.3f", k/r}')

cat <<TABLE

### Redis audit of $keys exporter-shaped keys (best of $runs, $(nproc) cores, $(redis-server --version | awk '{print $3}'))

| approach | wall time | peak RSS | client CPU | server CPU | vs kverify |
|---|---|---|---|---|---|
| \`kverify redis\` (SCAN TYPE hash + pipelined PTTL + HGETALL sample + pairing) | ${kv_s} s | $((kv_kb / 1024)) MB | ${kv_cpu} s | ${kv_server} s | 1.0× |
| \`redis-cli --scan --pattern 'gunicorn:*'\` (names only, no TTL) | ${scan_s} s | $((scan_kb / 1024)) MB | ${scan_cpu} s | ${scan_server} s | $(ratio "$scan_s" "$kv_s") |
| upstream \`redis-cli --scan … \| xargs -n1 redis-cli ttl\`, measured on $upstream_keys keys | ${up_s} s | – | – | – | – |
| upstream, extrapolated linearly to $keys keys | ≈ ${up_extrapolated} s | – | – | – | $(ratio "$up_extrapolated" "$kv_s") |
| redis-benchmark \`-P 100 PTTL\` ceiling: ${rps} ops/s, 1 command/key | ${ceiling_s} s | – | – | – | $(ratio "$ceiling_s" "$kv_s") |

kverify verdict: $(cat "$workdir/verdict")
$floor_table
TABLE
