"""gunicorn configuration for the demo app with the Gunicorn Prometheus Exporter, in each of its modes.

EXPORTER_MODE picks the master's when_ready hook:
  embedded (default) - redis_when_ready: store metrics in Redis and serve /metrics from the master
  sidecar            - redis_sidecar_when_ready: store in Redis only; sidecar.py serves /metrics
  multiprocess       - default_when_ready: workers write PROMETHEUS_MULTIPROC_DIR files, the master serves them
  yaml               - the exporter's settings come from YAML_CONFIG_PATH (env still wins); Redis storage with
                       the master serving /metrics when the YAML enables Redis, else the files of multiprocess
  default            - default_when_ready: with REDIS_ENABLED and no PROMETHEUS_MULTIPROC_DIR the exporter
                       silently skips its metrics server (a misconfiguration kverify must catch)
"""

import os
import queue

# Before anything reads the settings: the YAML fills in only what the environment leaves unset, and an invalid file
# raises here, so gunicorn refuses to start with the loader's message (what the exporter itself does).
if os.environ.get("YAML_CONFIG_PATH"):
    from gunicorn_prometheus_exporter.hooks import load_yaml_config

    load_yaml_config(os.environ["YAML_CONFIG_PATH"])

from gunicorn_prometheus_exporter.hooks import (  # noqa: E402
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



class _ReentrantSignalQueue(queue.SimpleQueue):
    """The exporter master's signal-metric queue, with a put that a signal handler may interrupt and re-enter.

    gunicorn_prometheus_exporter's PrometheusMaster.handle_chld, which gunicorn installs as the SIGCHLD handler, puts
    a metric on a queue.Queue. That queue's lock is not reentrant: a SIGCHLD during any put on it (two workers exiting
    together, or one exiting while HUP, TTIN, TTOU or USR1 queue their metric) deadlocks the master's main thread,
    which then never reaps, replaces workers or handles SIGTERM again (kverify's lifecycle phase reports it as
    lifecycle.master.signals). queue.SimpleQueue.put is documented reentrant; task_done is what the exporter's
    consumer thread calls on it. Like the exporter's queue (maxsize 1024) it holds at most 1024 metrics; past that
    one is dropped, never raised as queue.Full: the exporter would then count it synchronously, inside the signal
    handler, through locks that are not reentrant either.
    """

    limit = 1024

    def put_nowait(self, item):
        if self.qsize() < self.limit:
            super().put_nowait(item)

    def task_done(self):
        pass


def on_starting(server):
    # EXPORTER_SIGCHLD_PATCH=off keeps the exporter's own queue (kverify's tests of that deadlock).
    if os.environ.get("EXPORTER_SIGCHLD_PATCH", "on") != "off" and hasattr(server, "_signal_queue"):
        server._signal_queue = _ReentrantSignalQueue()
    default_on_starting(server)

post_fork = default_post_fork
worker_int = default_worker_int
on_exit = default_on_exit

_mode = os.environ.get("EXPORTER_MODE", "embedded")
if _mode == "yaml":
    _mode = "embedded" if os.environ.get("REDIS_ENABLED", "").lower() in ("true", "1", "yes", "on") else "multiprocess"
when_ready = {
    "embedded": redis_when_ready,
    "sidecar": redis_sidecar_when_ready,
    "multiprocess": default_when_ready,
    "default": default_when_ready,
}[_mode]

# DEMO_FAULT=drop-hup: a demo app whose master drops reloads (SIGHUP ignored once it is ready), for kverify's own
# fault tests of the lifecycle phase. Not set by any bundled manifest.
if os.environ.get("DEMO_FAULT") == "drop-hup":
    import signal

    _ready = when_ready

    def when_ready(server):
        _ready(server)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

# DEMO_FAULT=reset-on-hup: a demo app whose reload resets every counter it stored in Redis to 0 (what an exporter
# that loses its counters on HUP shows Prometheus), for kverify's fault tests. Not set by any bundled manifest.
if os.environ.get("DEMO_FAULT") == "reset-on-hup":

    def on_reload(server):
        import redis

        client = redis.Redis(host=os.environ.get("REDIS_HOST", "localhost"), port=int(os.environ.get("REDIS_PORT", "6379")),
                             password=os.environ.get("REDIS_PASSWORD") or None, db=int(os.environ.get("REDIS_DB", "0")))
        prefix = os.environ.get("REDIS_KEY_PREFIX", "gunicorn").rstrip(":")
        for key in client.scan_iter(match=f"{prefix}:counter:*:metric:*"):
            client.hset(key, "value", 0)

# DEMO_FAULT=uncounted-quit: a demo app whose workers leave on SIGQUIT without counting it (what the exporter shows
# when its signal handler's own Redis write fails), for kverify's fault tests. Not set by any bundled manifest. Like
# the exporter's write interrupted after its HSET, each leaves a metric key without its EXPIRE and its meta twin.
if os.environ.get("DEMO_FAULT") == "uncounted-quit":
    import signal
    import sys

    _post_worker_init = globals().get("post_worker_init")

    def _leave_interrupted(*_):
        import hashlib
        import time

        import redis

        client = redis.Redis(host=os.environ.get("REDIS_HOST", "localhost"), port=int(os.environ.get("REDIS_PORT", "6379")),
                             password=os.environ.get("REDIS_PASSWORD") or None, db=int(os.environ.get("REDIS_DB", "0")))
        prefix = os.environ.get("REDIS_KEY_PREFIX", "gunicorn").rstrip(":")
        digest = hashlib.md5(f"interrupted-{os.getpid()}".encode()).hexdigest()
        key = f"{prefix}:counter:{os.getpid()}:metric:{digest}"
        client.hset(key, mapping={"value": 1.0, "timestamp": time.time(), "updated_at": time.time()})
        sys.exit(0)

    def post_worker_init(worker):
        if _post_worker_init:
            _post_worker_init(worker)
        signal.signal(signal.SIGQUIT, _leave_interrupted)
