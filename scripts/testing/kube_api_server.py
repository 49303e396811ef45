#!/usr/bin/env python3
"""A small fake Kubernetes API server for kverify's KubeClient tests, real enough for both kverify backends
and for the real kubectl 1.32 (see /work/shared/reference/kubernetes.md for what kubectl asks).

Serves HTTPS (--cert/--key); --client-ca makes it ask for a client certificate, --client-auth required|optional
says whether a handshake without one fails (required) or falls back to bearer-token auth (optional, --token).
Every request must authenticate: a client certificate signed by the CA, or `Authorization: Bearer <--token>`.

API: /version; legacy discovery (/api, /apis, /api/v1, /apis/apps/v1, /apis/authorization.k8s.io/v1); a minimal
/openapi/v3 for `kubectl apply --server-side`; an in-memory store with get, list (labelSelector, fieldSelector
metadata.name / metadata.namespace / involvedObject.uid), watch (chunked line-delimited events, bookmarks,
timeoutSeconds, 410 for a compacted resourceVersion), server-side apply (PATCH application/apply-patch+yaml:
create or update, 409 on a field owned by another manager unless force=true, 422 for a DaemonSet/Deployment
without spec.selector), DELETE, POST namespaces and SelfSubjectAccessReviews (--deny resource[/sub] refuses),
pods/{name}/log and pods/{name}:{port}/proxy/{path}. Seeds --nodes N nodes (the first a tainted control plane,
--not-ready K of the workers NotReady), pods and events.

Faults are set on the plain-HTTP control port (--control-port) with GET /fault?...: see `Faults` below;
GET /requests returns the request log (method, path, auth kind, time), GET /reset clears faults and the log.
"""

import argparse
import copy
import json
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Condition()
STATE = {"rv": 100, "objects": {}, "history": [], "compacted_before": 0, "requests": [], "faults": []}
ARGS = None

RESOURCES = {
    # (group, version, plural): (kind, namespaced)
    ("", "v1", "pods"): ("Pod", True),
    ("", "v1", "nodes"): ("Node", False),
    ("", "v1", "events"): ("Event", True),
    ("", "v1", "services"): ("Service", True),
    ("", "v1", "namespaces"): ("Namespace", False),
    ("", "v1", "configmaps"): ("ConfigMap", True),
    ("apps", "v1", "daemonsets"): ("DaemonSet", True),
    ("apps", "v1", "deployments"): ("Deployment", True),
}


def next_rv():
    STATE["rv"] += 1
    return str(STATE["rv"])


def store_key(group, plural, namespace, name):
    return (group, plural, namespace or "", name)


def record(kind, group, plural, obj):
    """Stores a watch event for the object (caller holds LOCK)."""
    STATE["history"].append((int(obj["metadata"]["resourceVersion"]), kind, group, plural, copy.deepcopy(obj)))
    LOCK.notify_all()


def put(group, plural, obj, event="ADDED"):
    meta = obj.setdefault("metadata", {})
    meta["resourceVersion"] = next_rv()
    meta.setdefault("uid", "uid-%s-%s" % (plural, meta["name"]))
    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    STATE["objects"][store_key(group, plural, meta.get("namespace"), meta["name"])] = obj
    record(event, group, plural, obj)


def seed():
    with LOCK:
        for ns in ("default", "obs", "kube-system"):
            put("", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}})
        for i in range(ARGS.nodes):
            name = "node-%d" % i
            ready = "True"
            labels = {"kubernetes.io/hostname": name}
            spec = {}
            if i == 0:
                labels["node-role.kubernetes.io/control-plane"] = ""
                spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
            elif i > ARGS.nodes - 1 - ARGS.not_ready:
                ready = "False"
            put("", "nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": spec,
                              "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "KubeletNotReady"}],
                                         "addresses": [{"type": "InternalIP", "address": "172.18.0.%d" % (i + 2)}],
                                         "nodeInfo": {"kubeletVersion": "v1.32.4"}}})
        for i in range(2):
            put("", "pods", {"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": "exporter-%d" % i, "namespace": "obs", "labels": {"app": "exporter"}},
                             "spec": {"nodeName": "node-%d" % (i + 1), "containers": [{"name": "app"}, {"name": "metrics"}]},
                             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                                        "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "state": {"running": {}}}]}})
        put("", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other", "namespace": "obs", "labels": {"app": "other"}},
                         "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}})
        put("", "events", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "exporter-0.1", "namespace": "obs"},
                           "involvedObject": {"kind": "Pod", "name": "exporter-0", "namespace": "obs", "uid": "uid-pods-exporter-0"},
                           "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning", "count": 3})
        put("", "events", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "other.1", "namespace": "obs"},
                           "involvedObject": {"kind": "Pod", "name": "other", "namespace": "obs", "uid": "uid-pods-other"},
                           "reason": "Scheduled", "message": "assigned", "type": "Normal"})


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def discovery_list(group, version):
    resources = []
    for (g, v, plural), (kind, namespaced) in sorted(RESOURCES.items()):
        if g == group and v == version:
            resources.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                              "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
            if plural == "pods":
                resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]})
                resources.append({"name": "pods/proxy", "singularName": "", "namespaced": True, "kind": "PodProxyOptions", "verbs": ["get"]})
    if group == "authorization.k8s.io":
        resources.append({"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": False,
                          "kind": "SelfSubjectAccessReview", "verbs": ["create"]})
    gv = version if not group else "%s/%s" % (group, version)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def openapi_document(gv):
    paths = {}
    for (g, v, plural), (kind, namespaced) in RESOURCES.items():
        if ("%s/%s" % (g, v) if g else v) != gv:
            continue
        prefix = "/apis/%s/%s" % (g, v) if g else "/api/%s" % v
        path = prefix + ("/namespaces/{namespace}/%s/{name}" % plural if namespaced else "/%s/{name}" % plural)
        paths[path] = {"patch": {
            "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.4"}, "paths": paths, "components": {"schemas": {}}}


def label_match(labels, selector):
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_match(obj, selector):
    for term in filter(None, selector.split(",")):
        key, value = term.split("=", 1)
        current = obj
        for part in key.split("."):
            current = current.get(part, {}) if isinstance(current, dict) else {}
        if (current if isinstance(current, str) else "") != value:
            return False
    return True


def matches(obj, query):
    labels = obj.get("metadata", {}).get("labels") or {}
    return label_match(labels, query.get("labelSelector", "")) and field_match(obj, query.get("fieldSelector", ""))


class Faults:
    """A fault applies to requests whose path starts with `path` (and method, if given), `count` times (-1: always).
    kinds: status (code, reason), retry429 (retry_after seconds), html, http10, close_mid_body, reset, slow (seconds),
    watch_gone (watch requests from an old resourceVersion get an ERROR 410 event), watch_chunks (size: bytes per
    chunk), watch_no_newline (a line that never ends), watch_stall (send nothing), not_json."""

    @staticmethod
    def take(method, path, watching):
        with LOCK:
            for fault in STATE["faults"]:
                if fault["kind"].startswith("watch_") != watching:
                    continue
                if path.startswith(fault["path"]) and fault.get("method", method) == method and fault["count"] != 0:
                    if fault["count"] > 0:
                        fault["count"] -= 1
                    return dict(fault)
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ---- plumbing
    def send_json(self, code, body, extra_headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, code, text, content_type="text/plain"):
        data = text.encode() if isinstance(text, str) else text
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def authenticate(self):
        """Returns the user name, or None after sending 401."""
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        auth = self.headers.get("Authorization", "")
        kind = "none"
        user = None
        if cert:
            kind = "cert"
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        user = value
        elif auth.startswith("Bearer "):
            kind = "bearer"
            if ARGS.token and auth[7:] == ARGS.token:
                user = "token-user"
        elif auth.startswith("Basic "):
            kind = "basic"
        with LOCK:
            STATE["requests"].append({"method": self.command, "path": self.path, "auth": kind, "time": time.time(),
                                      "userAgent": self.headers.get("User-Agent", ""), "accept": self.headers.get("Accept", ""),
                                      "contentType": self.headers.get("Content-Type", "")})
        if user is None and not ARGS.anonymous:
            self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return None
        return user or "anonymous"

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def do_DELETE(self):
        self.handle_api("DELETE")

    def do_PUT(self):
        self.handle_api("PUT")

    # ---- faults
    def apply_fault(self, fault):
        kind = fault["kind"]
        if kind == "status":
            code = int(fault.get("code", 500))
            reason = fault.get("reason", "InternalError")
            details = None
            if code == 422:
                details = {"name": "x", "kind": "DaemonSet", "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}]}
            headers = [("Retry-After", fault["retry_after"])] if "retry_after" in fault else []
            self.send_json(code, status(code, reason, fault.get("message", "injected %s" % reason), details), headers)
        elif kind == "retry429":
            self.send_json(429, status(429, "TooManyRequests", "slow down"), [("Retry-After", str(fault.get("retry_after", "1")))])
        elif kind == "html":
            self.send_text(int(fault.get("code", 200)), "<!DOCTYPE html><html><body>Please sign in</body></html>", "text/html")
        elif kind == "not_json":
            self.send_text(200, "definitely not json", "application/json")
        elif kind == "http10":
            body = json.dumps({"major": "1", "minor": "32", "gitVersion": "v1.32.4-http10"}).encode()
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body)
            self.wfile.flush()
            self.close_connection = True
        elif kind == "close_mid_body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"kind":"NodeList","items":[')
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "reset":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "slow":
            time.sleep(float(fault.get("seconds", 5)))
            return False
        else:
            return False
        return True

    # ---- API
    def handle_api(self, method):
        user = self.authenticate()
        if user is None:
            return
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        fault = Faults.take(method, path, query.get("watch") in ("true", "1"))
        if fault and fault["kind"] not in ("watch_gone", "watch_chunks", "watch_no_newline", "watch_stall") and self.apply_fault(fault):
            return
        body = self.read_body() if method in ("POST", "PATCH", "PUT", "DELETE") else b""
        content_type = self.headers.get("Content-Type", "")
        if body and "protobuf" in content_type:
            # Typed kubectl commands (create namespace, auth can-i) send protobuf, which this fake cannot read.
            return self.send_json(415, status(415, "UnsupportedMediaType", "this test server reads JSON bodies only"))

        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"})
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            groups = []
            for g in ("apps", "authorization.k8s.io"):
                gv = {"groupVersion": "%s/v1" % g, "version": "v1"}
                groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/api/v1":
            return self.send_json(200, discovery_list("", "v1"))
        m = re.fullmatch(r"/apis/([^/]+)/([^/]+)", path)
        if m and m.group(1) in ("apps", "authorization.k8s.io") and m.group(2) == "v1":
            return self.send_json(200, discovery_list(m.group(1), m.group(2)))
        if path == "/openapi/v3":
            return self.send_json(200, {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=1"},
                                                  "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=1"}}})
        if path.startswith("/openapi/v3/"):
            return self.send_json(200, openapi_document(path[len("/openapi/v3/"):].replace("api/", "", 1) if path.startswith("/openapi/v3/api/") else path[len("/openapi/v3/apis/"):]))
        if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" and method == "POST":
            review = json.loads(body or b"{}")
            attrs = review.get("spec", {}).get("resourceAttributes", {})
            resource = attrs.get("resource", "") + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
            denied = resource in (ARGS.deny or [])
            review["status"] = {"allowed": not denied}
            if denied:
                review["status"]["reason"] = "no RBAC policy matched"
            return self.send_json(201, review)

        m = re.fullmatch(r"/(?:api/(v1)|apis/([^/]+)/(v1))(?:/namespaces/([^/]+))?/([^/]+)(?:/([^/]+))?(?:/(.*))?", path)
        if not m:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        group = m.group(2) or ""
        version = m.group(1) or m.group(3)
        namespace, plural, name, sub = m.group(4), m.group(5), m.group(6), m.group(7)
        if (group, version, plural) not in RESOURCES:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        kind, namespaced = RESOURCES[(group, version, plural)]

        if plural == "pods" and sub is not None:
            return self.pod_subresource(namespace, name, sub, query)
        if method == "GET" and name is None:
            if query.get("watch") in ("true", "1"):
                return self.watch(group, plural, kind, namespace, query, fault)
            return self.list(group, plural, kind, namespace, query)
        if method == "GET":
            with LOCK:
                obj = STATE["objects"].get(store_key(group, plural, namespace, name))
            if obj is None:
                return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (plural, name), {"name": name, "kind": plural}))
            return self.send_json(200, obj)
        if method == "PATCH":
            return self.apply(group, version, plural, kind, namespace, name, body, query)
        if method == "POST" and name is None:
            obj = json.loads(body)
            obj_name = obj.get("metadata", {}).get("name")
            with LOCK:
                if store_key(group, plural, namespace, obj_name) in STATE["objects"]:
                    return self.send_json(409, status(409, "AlreadyExists", '%s "%s" already exists' % (plural, obj_name), {"name": obj_name, "kind": plural}))
                obj.setdefault("apiVersion", version if not group else "%s/%s" % (group, version))
                obj.setdefault("kind", kind)
                if namespace:
                    obj["metadata"]["namespace"] = namespace
                if plural == "namespaces":
                    obj["status"] = {"phase": "Active"}
                put(group, plural, obj)
            return self.send_json(201, obj)
        if method == "DELETE":
            with LOCK:
                obj = STATE["objects"].pop(store_key(group, plural, namespace, name), None)
                if obj is not None:
                    obj["metadata"]["resourceVersion"] = next_rv()
                    record("DELETED", group, plural, obj)
            if obj is None:
                return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (plural, name), {"name": name, "kind": plural}))
            return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name, "kind": plural}})
        return self.send_json(405, status(405, "MethodNotAllowed", "method not allowed"))

    def list(self, group, plural, kind, namespace, query):
        with LOCK:
            items = [copy.deepcopy(o) for (g, p, ns, _), o in sorted(STATE["objects"].items())
                     if g == group and p == plural and (namespace is None or ns == namespace) and matches(o, query)]
            rv = str(STATE["rv"])
        self.send_json(200, {"kind": kind + "List", "apiVersion": "v1" if not group else group + "/v1",
                             "metadata": {"resourceVersion": rv}, "items": items})

    def apply(self, group, version, plural, kind, namespace, name, body, query):
        if self.headers.get("Content-Type", "").split(";")[0] != "application/apply-patch+yaml":
            return self.send_json(415, status(415, "UnsupportedMediaType", "only server-side apply is supported here"))
        try:
            obj = json.loads(body)
        except ValueError:
            return self.send_json(400, status(400, "BadRequest", "body is not JSON"))
        manager = query.get("fieldManager", "")
        if not manager:
            return self.send_json(422, status(422, "Invalid", "fieldManager is required for apply"))
        force = query.get("force") == "true"
        if kind in ("DaemonSet", "Deployment") and not (obj.get("spec") or {}).get("selector"):
            return self.send_json(422, status(422, "Invalid", '%s.apps "%s" is invalid: spec.selector: Required value' % (kind, name),
                                              {"name": name, "kind": kind, "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}]}))
        with LOCK:
            key = store_key(group, plural, namespace, name)
            current = STATE["objects"].get(key)
            if current is not None:
                owner = current["metadata"].get("annotations", {}).get("test.kverify/spec-manager", manager)
                if owner != manager and not force and current.get("spec") != obj.get("spec"):
                    return self.send_json(409, status(409, "Conflict", 'Apply failed with 1 conflict: conflict with "%s": .spec' % owner,
                                                      {"name": name, "kind": plural, "causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "%s"' % owner, "field": ".spec"}]}))
                merged = copy.deepcopy(current)
                merged["spec"] = obj.get("spec", merged.get("spec"))
                merged["metadata"]["labels"] = obj.get("metadata", {}).get("labels", merged["metadata"].get("labels"))
                merged["metadata"]["generation"] = merged["metadata"].get("generation", 1) + 1
                merged["metadata"].setdefault("annotations", {})["test.kverify/spec-manager"] = manager
                put(group, plural, merged, "MODIFIED")
                return self.send_json(200, merged)
            obj.setdefault("metadata", {})["namespace"] = namespace
            if namespace is None:
                obj["metadata"].pop("namespace")
            obj["metadata"]["generation"] = 1
            obj["metadata"].setdefault("annotations", {})["test.kverify/spec-manager"] = manager
            if kind == "DaemonSet":
                obj["spec"].setdefault("updateStrategy", {"type": "RollingUpdate"})
            put(group, plural, obj)
            return self.send_json(201, obj)

    def pod_subresource(self, namespace, name, sub, query):
        if ":" in name and sub.startswith("proxy"):
            pod, port = name.rsplit(":", 1)
            with LOCK:
                exists = store_key("", "pods", namespace, pod) in STATE["objects"] or pod.startswith("bench-")
            if not exists:
                return self.send_json(404, status(404, "NotFound", 'pods "%s" not found' % pod))
            rest = sub[len("proxy"):]
            return self.send_text(200, "# proxied to pod %s port %s path %s\nup 1\n" % (pod, port, rest or "/"), "text/plain; version=0.0.4")
        with LOCK:
            pod = STATE["objects"].get(store_key("", "pods", namespace, name))
        if pod is None:
            return self.send_json(404, status(404, "NotFound", 'pods "%s" not found' % name))
        if sub == "log":
            containers = [c["name"] for c in pod["spec"].get("containers", [])]
            container = query.get("container")
            if container is None and len(containers) > 1:
                return self.send_json(400, status(400, "BadRequest", "a container name must be specified for pod %s, choose one of: %s" % (name, containers)))
            container = container or containers[0]
            if container not in containers:
                return self.send_json(400, status(400, "BadRequest", "container %s is not valid for pod %s" % (container, name)))
            lines = ["%s line %d" % (container, i) for i in range(1, 11)]
            if "tailLines" in query:
                lines = lines[-int(query["tailLines"]):]
            return self.send_text(200, "".join(line + "\n" for line in lines))
        return self.send_json(404, status(404, "NotFound", "no such subresource"))

    def watch(self, group, plural, kind, namespace, query, fault):
        rv = int(query.get("resourceVersion") or 0)
        timeout = min(float(query.get("timeoutSeconds") or 30), 60)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chunk_size = int(fault["size"]) if fault and fault["kind"] == "watch_chunks" else 0

        def write(data):
            pieces = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] if chunk_size else [data]
            for piece in pieces:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                if chunk_size:
                    time.sleep(0.002)

        def send(event_type, obj):
            write(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

        try:
            if fault and fault["kind"] == "watch_gone" and rv > 0:
                send("ERROR", status(410, "Expired", "too old resource version: %d (%d)" % (rv, STATE["rv"])))
                write(b"")
                return
            if fault and fault["kind"] == "watch_no_newline":
                deadline = time.time() + timeout
                while time.time() < deadline:
                    write(b'{"type":"ADDED","object":{"padding":"' + b"x" * 65536)
                return
            if fault and fault["kind"] == "watch_stall":
                write(b'{"type":"ADDED",')
                time.sleep(timeout)
                return
            if bookmarks:
                send("BOOKMARK", {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(max(rv, STATE["compacted_before"]))}})
            deadline = time.time() + timeout
            last = rv
            while True:
                with LOCK:
                    pending = [(r, t, copy.deepcopy(o)) for (r, t, g, p, o) in STATE["history"]
                               if r > last and g == group and p == plural
                               and (namespace is None or o["metadata"].get("namespace") == namespace) and matches(o, query)]
                    if not pending:
                        remaining = deadline - time.time()
                        if remaining <= 0:
                            break
                        LOCK.wait(min(remaining, 0.5))
                        continue
                for r, t, o in pending:
                    send(t, o)
                    last = r
                if bookmarks:
                    send("BOOKMARK", {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(STATE["rv"])}})
                    last = max(last, STATE["rv"])
            write(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True


class Control(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        with LOCK:
            if parsed.path == "/fault":
                fault = dict(query)
                fault["count"] = int(fault.get("count", "-1"))
                STATE["faults"].append(fault)
                body = {"ok": True}
            elif parsed.path == "/requests":
                body = STATE["requests"]
            elif parsed.path == "/reset":
                STATE["faults"].clear()
                STATE["requests"].clear()
                body = {"ok": True}
            elif parsed.path == "/change":
                # Touch an object so watchers see a MODIFIED event: /change?plural=pods&namespace=obs&name=exporter-0
                key = store_key(query.get("group", ""), query["plural"], query.get("namespace"), query["name"])
                obj = STATE["objects"].get(key)
                if obj is not None:
                    obj["metadata"].setdefault("labels", {})["touched"] = str(STATE["rv"])
                    put(key[0], key[1], obj, "MODIFIED")
                body = {"ok": obj is not None}
            else:
                body = {"error": "unknown"}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca")
    parser.add_argument("--client-auth", choices=["required", "optional"], default="required")
    parser.add_argument("--token")
    parser.add_argument("--anonymous", action="store_true", help="accept unauthenticated requests")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--not-ready", type=int, default=0)
    parser.add_argument("--deny", action="append", help="resource[/subresource] SelfSubjectAccessReviews refuse")
    ARGS = parser.parse_args()
    seed()

    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    if ARGS.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.cert, ARGS.key)
        if ARGS.client_ca:
            context.load_verify_locations(ARGS.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED if ARGS.client_auth == "required" else ssl.CERT_OPTIONAL
        server.socket = context.wrap_socket(server.socket, server_side=True)
    control = ThreadingHTTPServer(("127.0.0.1", ARGS.control_port), Control)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
