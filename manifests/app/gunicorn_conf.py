"""gunicorn configuration for the demo app with the Gunicorn Prometheus Exporter in Redis mode.

EXPORTER_MODE picks the master's when_ready hook:
  embedded (default) - redis_when_ready: store metrics in Redis and serve /metrics from the master
  sidecar            - redis_sidecar_when_ready: store in Redis only; sidecar.py serves /metrics
  default            - default_when_ready: with REDIS_ENABLED and no PROMETHEUS_MULTIPROC_DIR the exporter
                       silently skips its metrics server (a misconfiguration kverify must catch)
"""

import os

from gunicorn_prometheus_exporter.hooks import (
    default_on_exit,
    default_on_starting,
    default_post_fork,
    default_when_ready,
    default_worker_int,
    redis_sidecar_when_ready,
    redis_when_ready,
)

bind = os.environ.get("APP_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gunicorn_prometheus_exporter.PrometheusWorker"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "2"))
accesslog = None
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

on_starting = default_on_starting
post_fork = default_post_fork
worker_int = default_worker_int
on_exit = default_on_exit

_mode = os.environ.get("EXPORTER_MODE", "embedded")
when_ready = {
    "embedded": redis_when_ready,
    "sidecar": redis_sidecar_when_ready,
    "default": default_when_ready,
}[_mode]
