import Foundation
import KVerifyTestSupport
import Testing

/// scripts/health-check.sh with the real kubectl against a minimal API server (Python, written below), so the
/// jsonpath template, `auth can-i --subresource` and the readiness parsing are checked against kubectl itself.
@Suite struct HealthCheckRealKubectlTests {
    /// Serves discovery, `/readyz`, a two-node NodeList (the worker NotReady and without the demo image), and
    /// answers SelfSubjectAccessReviews (protobuf-encoded by kubectl) allowing everything except
    /// `delete namespaces` and `pods/proxy`. Logs each review's attributes as one JSON line on stderr.
    static let server = #"""
        import json, sys
        from http.server import BaseHTTPRequestHandler, HTTPServer

        VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
        def res(name, kind, namespaced, verbs=VERBS):
            return {"name": name, "singularResource": "", "namespaced": namespaced, "kind": kind, "verbs": verbs}
        def group(name):
            gv = {"groupVersion": name + "/v1", "version": "v1"}
            return {"name": name, "versions": [gv], "preferredVersion": gv}
        DOCS = {
            "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.4"},
            "/api": {"kind": "APIVersions", "versions": ["v1"],
                     "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
            "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("authorization.k8s.io")]},
            "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                res("nodes", "Node", False), res("pods", "Pod", True), res("pods/log", "Pod", True, ["get"]),
                res("pods/proxy", "PodProxyOptions", True, ["get", "create"]), res("services", "Service", True),
                res("configmaps", "ConfigMap", True), res("namespaces", "Namespace", False), res("events", "Event", True)]},
            "/apis/apps/v1": {"kind": "APIResourceList", "groupVersion": "apps/v1",
                              "resources": [res("daemonsets", "DaemonSet", True), res("deployments", "Deployment", True)]},
            "/apis/authorization.k8s.io/v1": {"kind": "APIResourceList", "groupVersion": "authorization.k8s.io/v1",
                "resources": [res("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ["create"])]},
        }
        def node(name, ready, images):
            return {"metadata": {"name": name}, "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}],
                "images": [{"names": names, "sizeBytes": 1} for names in images]}}
        DOCS["/api/v1/nodes"] = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [
            node("kverify-control-plane", "True", [["docker.io/library/kverify-demo-app:dev"], ["registry.k8s.io/pause:3.10"]]),
            node("kverify-worker", "False", [["registry.k8s.io/pause:3.10"]])]}

        def varint(b, i):
            n = shift = 0
            while True:
                c = b[i]; i += 1; n |= (c & 0x7F) << shift; shift += 7
                if c < 0x80: return n, i
        def fields(b):
            out, i = {}, 0
            while i < len(b):
                key, i = varint(b, i)
                if key & 7 == 2:
                    n, i = varint(b, i); out[key >> 3] = b[i:i + n]; i += n
                elif key & 7 == 0:
                    _, i = varint(b, i)
                else:
                    raise ValueError("wire type %d" % (key & 7))
            return out
        def attributes(raw):
            if raw.startswith(b"k8s\x00"):  # runtime.Unknown{raw: SelfSubjectAccessReview{spec: {resourceAttributes}}}
                spec = fields(fields(fields(raw[4:])[2])[2])
                names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
                return {names[k]: v.decode() for k, v in fields(spec.get(1, b"")).items() if k in names}
            return json.loads(raw)["spec"].get("resourceAttributes", {})

        class Handler(BaseHTTPRequestHandler):
            def reply(self, body, ctype="application/json"):
                body = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/readyz": return self.reply(b"ok", "text/plain")
                if path in DOCS: return self.reply(DOCS[path])
                self.send_response(404); self.end_headers()
            def do_POST(self):
                ra = attributes(self.rfile.read(int(self.headers["Content-Length"])))
                print(json.dumps(ra, sort_keys=True), file=sys.stderr, flush=True)
                allowed = (ra.get("verb"), ra.get("resource")) != ("delete", "namespaces") and ra.get("subresource") != "proxy"
                self.reply({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
                            "spec": {"resourceAttributes": ra}, "status": {"allowed": allowed}})
            def log_message(self, *args): pass

        HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """#

    @Test func realKubectlReportsTheNotReadyWorkerItsMissingImageAndTheDeniedVerbs() async throws {
        let kubectl = try #require(["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
            .first(where: FileManager.default.isExecutableFile(atPath:)), "kubectl is not installed")
        let python = RepositoryPaths.venvBin.appendingPathComponent("python")
        try #require(FileManager.default.isExecutableFile(atPath: python.path), "no .venv: run scripts/bootstrap.sh")

        try await FakeToolbox.with(tools: []) { box in
            let script = box.directory.appendingPathComponent("apiserver.py")
            try Data(Self.server.utf8).write(to: script)
            let port = try TCPProbe.freePort()
            let server = try ChildProcess(name: "fake-apiserver", executable: python, arguments: [script.path, "\(port)"])
            defer { server.stop() }
            try await server.waitForPort(port)

            try FileManager.default.createSymbolicLink(at: box.bin.appendingPathComponent("kubectl"),
                                                       withDestinationURL: URL(fileURLWithPath: kubectl))
            try box.writeRecord("kverify", [
                "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "kind", "KVERIFY_CREATED": "yes",
                "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_KUBECONFIG": box.kubeconfigURL("kverify").path,
                "KVERIFY_CONTEXT": "kind-kverify", "KVERIFY_NODES": "2", "KVERIFY_IMAGE": "kverify-demo-app:dev",
            ])
            let kubeconfig = """
                apiVersion: v1
                kind: Config
                clusters: [{name: fake, cluster: {server: "http://127.0.0.1:\(port)"}}]
                users: [{name: nobody, user: {}}]
                contexts: [{name: kind-kverify, context: {cluster: fake, user: nobody}}]
                current-context: kind-kverify

                """
            try Data(kubeconfig.utf8).write(to: box.kubeconfigURL("kverify"))

            let result = try await box.run("health-check.sh", environment: ["KUBECACHEDIR": box.directory.appendingPathComponent("cache").path])
            #expect(result.status == 1, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines == [
                "ok    reachable    context 'kind-kverify' answers /readyz",
                "FAIL  nodes        1 of 2 node(s) Ready, expected at least 2; not Ready: kverify-worker (Ready=False)",
                "FAIL  image        kverify-demo-app:dev not on node(s): kverify-worker; load it with scripts/setup.sh or 'kind' image loading",
                "FAIL  permissions  denied in namespace default: delete namespaces, get pods --subresource=proxy",
                "health: 3 of 4 checks failed",
            ])
            // What kubectl asked the server: one review per permission, subresources as subresources.
            let reviews = server.logTail(lines: 100).split(separator: "\n").filter { $0.hasPrefix("{") }
            #expect(reviews.count == 29)
            #expect(reviews.contains { $0.contains(#""resource": "pods", "subresource": "log""#) && $0.contains(#""verb": "get""#) })
            #expect(reviews.contains { $0.contains(#""group": "apps""#) && $0.contains(#""resource": "daemonsets""#) && $0.contains(#""verb": "watch""#) })
        }
    }
}
