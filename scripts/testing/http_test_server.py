#!/usr/bin/env python3
"""A real HTTP(S) server for kverify's HTTP tests: canned answers for the cases a client must survive.

Routes: /text (Prometheus text), /openmetrics, /status/<code>, /slow/<seconds>, /big/<bytes>,
/content-type/<type> (body "x 1"), /chunks/<count>/<delay-ms> (chunked lines), /close-mid-body,
/echo (method, headers and body back as JSON).
With --cert/--key it serves TLS; with --client-ca it requires a client certificate signed by that CA."""

import argparse
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEXT = b"# TYPE up gauge\nup 1\n"
OPENMETRICS = b"# TYPE up gauge\nup 1\n# EOF\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, content_type="text/plain; version=0.0.4"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        route = parts[0]
        if route == "text":
            self.reply(200, TEXT)
        elif route == "openmetrics":
            self.reply(200, OPENMETRICS, "application/openmetrics-text; version=1.0.0; charset=utf-8")
        elif route == "status":
            self.reply(int(parts[1]), b"status %s\n" % parts[1].encode(), "text/plain")
        elif route == "slow":
            time.sleep(float(parts[1]))
            self.reply(200, TEXT)
        elif route == "big":
            size = int(parts[1])
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"# padding padding padding padding padding padding padding padding\n" * 1000
            sent = 0
            try:
                while sent < size:
                    piece = chunk[: min(len(chunk), size - sent)]
                    self.wfile.write(piece)
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif route == "content-type":
            self.reply(200, b"x 1\n", "/".join(parts[1:]))
        elif route == "chunks":
            count, delay = int(parts[1]), int(parts[2]) / 1000
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for index in range(count):
                line = json.dumps({"index": index}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                time.sleep(delay)
            self.wfile.write(b"0\r\n\r\n")
        elif route == "close-mid-body":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"up 1\n")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
        elif route == "echo":
            self.echo()
        else:
            self.reply(404, b"no route\n", "text/plain")

    def echo(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        payload = {"method": self.command, "headers": dict(self.headers), "body": body}
        self.reply(200, json.dumps(payload).encode(), "application/json")

    do_POST = do_PUT = do_PATCH = do_DELETE = echo


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    # --port 0 lets the kernel choose; the line names the port really bound.
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
