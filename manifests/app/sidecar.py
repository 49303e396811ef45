"""The exporter sidecar: serves the metrics the app's workers store in Redis.

The upstream image ships an equivalent sidecar.py that the PyPI package lacks; this one uses
the package's own RedisMultiProcessCollector (see ../../README.md, "sidecar pattern")."""

import os
import signal
import sys
import threading

import redis
from prometheus_client import CollectorRegistry, start_http_server

from gunicorn_prometheus_exporter.backend.core import RedisMultiProcessCollector


def main() -> int:
    port = int(os.environ.get("PROMETHEUS_METRICS_PORT", "9091"))
    address = os.environ.get("PROMETHEUS_BIND_ADDRESS", "0.0.0.0")
    prefix = os.environ.get("REDIS_KEY_PREFIX", "gunicorn").rstrip(":")
    client = redis.Redis(
        host=os.environ.get("REDIS_HOST", "127.0.0.1"),
        port=int(os.environ.get("REDIS_PORT", "6379")),
        db=int(os.environ.get("REDIS_DB", "0")),
        password=os.environ.get("REDIS_PASSWORD") or None,
        socket_timeout=5,
    )
    client.ping()
    registry = CollectorRegistry()
    RedisMultiProcessCollector(registry, client, prefix)
    start_http_server(port, addr=address, registry=registry)
    print(f"sidecar: serving metrics from redis prefix {prefix!r} on {address}:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
