"""The demo application kverify deploys: a tiny WSGI app served by gunicorn with the
Gunicorn Prometheus Exporter's worker class, so every request moves real metrics."""

import json
import os
import socket


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        body = b"ok\n"
        status = "200 OK"
    elif path == "/":
        body = json.dumps(
            {
                "app": "kverify-demo",
                "pod": os.environ.get("POD_NAME", socket.gethostname()),
                "node": os.environ.get("NODE_NAME", ""),
                "pid": os.getpid(),
            }
        ).encode() + b"\n"
        status = "200 OK"
    else:
        body = b"not found\n"
        status = "404 Not Found"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
