import Foundation
import KVerifyTestSupport
import KubeModel
import Testing
@testable import KubeSim
@testable import SimStore
@testable import SimFaults
@testable import SimControlPlane
@testable import SimAPIServer
@testable import SimNode

/// The sim driven by the real kubectl 1.32, as a user would drive kind.
@Suite("kubectl against the sim", .serialized)
struct KubectlAcceptanceTests {
    static let manifest = """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: demo
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: demo
        data:
          mode: embedded
        ---
        apiVersion: apps/v1
        kind: DaemonSet
        metadata:
          name: exporter
          namespace: demo
          labels: {app: exporter}
        spec:
          selector:
            matchLabels: {app: exporter}
          template:
            metadata:
              labels: {app: exporter}
            spec:
              containers:
              - name: app
                image: demo:1
                ports: [{containerPort: 9093, name: metrics}]
        """

    static func pod(_ name: String, namespace: String = "demo", labels: [String: String], owner: (kind: String, name: String, uid: String)? = nil) -> String {
        var text = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: \(name)
              namespace: \(namespace)
              labels: {\(labels.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))}

            """
        if let owner {
            text += "  ownerReferences: [{apiVersion: v1, kind: \(owner.kind), name: \(owner.name), uid: \"\(owner.uid)\"}]\n"
        }
        return text + "spec:\n  containers: [{name: app, image: demo:1, ports: [{containerPort: 9093, name: metrics}]}]\n"
    }

    @Test("get nodes lists every node with kind's names and the control-plane role")
    func getNodes() async throws {
        try await withSim(nodes: 3) { sim, kubectl in
            let result = try await kubectl("get", "nodes")
            #expect(result.status == 0, "\(result)")
            let rows = result.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            #expect(rows.map { $0[0] } == ["kverify-sim-control-plane", "kverify-sim-worker", "kverify-sim-worker2"])
            #expect(rows.map { $0[1] } == ["Ready", "Ready", "Ready"])
            #expect(rows.map { $0[2] } == ["control-plane", "<none>", "<none>"])
            #expect(rows.allSatisfy { $0.last == "v1.32.4" })

            let taints = try await kubectl("get", "node", "kverify-sim-control-plane", "-o", "jsonpath={.spec.taints[0].key}:{.spec.taints[0].effect} {.status.addresses[0].address}")
            #expect(taints.stdout == "node-role.kubernetes.io/control-plane:NoSchedule \(sim.nodeAddresses[0])")
            #expect(sim.nodeAddresses[0].hasPrefix("127."))
        }
    }

    @Test("apply --server-side creates a multi-document manifest, and applying it again updates without error")
    func serverSideApply() async throws {
        try await withSim { _, kubectl in
            let first = try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.manifest)
            #expect(first.status == 0, "\(first)")
            #expect(first.stdout.contains("daemonset.apps/exporter serverside-applied"))
            let second = try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.manifest.replacingOccurrences(of: "demo:1", with: "demo:2"))
            #expect(second.status == 0, "\(second)")

            let json = try await kubectl("get", "ds", "exporter", "-n", "demo", "-o", "json")
            let object = try JSONValue.parse(json: Data(json.stdout.utf8))
            #expect(object.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["image"] == "demo:2")
            #expect(object.value(at: ["metadata", "generation"]) == 2)
            #expect(object.string(at: "spec", "updateStrategy", "type") == "RollingUpdate")
            #expect(object.string(at: "metadata", "namespace") == "demo")
            #expect(object.string(at: "metadata", "uid")?.count == 36)
        }
    }

    @Test("get -o json returns what was created, and create of that output again is AlreadyExists")
    func jsonRoundTrip() async throws {
        try await withSim { _, kubectl in
            try await kubectl("create", "namespace", "demo")
            let created = try await kubectl("create", "configmap", "settings", "-n", "demo", "--from-literal=mode=embedded", "--from-literal=ttl=300")
            #expect(created.status == 0, "\(created)")
            let json = try await kubectl("get", "configmap", "settings", "-n", "demo", "-o", "json")
            let object = try JSONValue.parse(json: Data(json.stdout.utf8))
            #expect(object["data"] == ["mode": "embedded", "ttl": "300"])
            #expect(object["kind"] == "ConfigMap")
            let again = try await kubectl("create", "-f", "-", stdin: json.stdout)
            #expect(again.status != 0)
            #expect(again.stderr.contains("Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"settings\" already exists"), "\(again)")
        }
    }

    @Test("get pods -l filters on the server", arguments: [
        ("app=exporter", ["a", "b"]), ("app=exporter,tier!=canary", ["a"]), ("tier in (canary)", ["b"]),
        ("app notin (exporter)", ["c"]), ("!tier", ["a", "c"]), ("tier", ["b"]),
    ])
    func labelSelectors(_ selector: String, _ expected: [String]) async throws {
        try await withSim(nodes: 1) { _, kubectl in
            try await kubectl("create", "namespace", "demo")
            let pods = [Self.pod("a", labels: ["app": "exporter"]), Self.pod("b", labels: ["app": "exporter", "tier": "canary"]),
                        Self.pod("c", labels: ["app": "web"])]
            let applied = try await kubectl("apply", "--server-side", "-f", "-", stdin: pods.joined(separator: "---\n"))
            #expect(applied.status == 0, "\(applied)")
            let result = try await kubectl("get", "pods", "-n", "demo", "-l", selector, "-o", "jsonpath={.items[*].metadata.name}")
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.split(separator: " ").map(String.init) == expected)
        }
    }

    @Test("deleting an owner deletes what it owns; kubectl wait --for=delete sees it go")
    func cascadingDelete() async throws {
        try await withSim(nodes: 1) { sim, kubectl in
            try await kubectl("create", "namespace", "demo")
            try await kubectl("create", "configmap", "owner", "-n", "demo")
            let uid = try await kubectl("get", "configmap", "owner", "-n", "demo", "-o", "jsonpath={.metadata.uid}").stdout
            let applied = try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("child", labels: ["app": "x"], owner: ("ConfigMap", "owner", uid)))
            #expect(applied.status == 0, "\(applied)")

            let baseline = sim.store.watcherCount  // the sim's own controllers watch too
            let waiter = try kubectl.background(["wait", "--for=delete", "pod/child", "-n", "demo", "--timeout=60s"])
            defer { waiter.stop() }
            // Delete only once kubectl wait is watching, so the test covers the watch path every time.
            let store = sim.store
            let watching = await eventually(timeout: .seconds(40)) { store.watcherCount > baseline }
            #expect(watching, "\(waiter.logTail())")
            let deleted = try await kubectl("delete", "configmap", "owner", "-n", "demo")
            #expect(deleted.stdout == "configmap \"owner\" deleted\n", "\(deleted)")
            #expect(await eventually(timeout: .seconds(40)) { waiter.logTail().contains("pod/child condition met") }, "\(waiter.logTail())")
            let gone = try await kubectl("get", "pod", "child", "-n", "demo")
            #expect(gone.stderr == "Error from server (NotFound): pods \"child\" not found\n")
        }
    }

    @Test("deleting a namespace deletes its contents, then the namespace")
    func namespaceTermination() async throws {
        try await withSim(nodes: 1) { sim, kubectl in
            try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.manifest).expectSuccess()
            let deleted = try await kubectl("delete", "namespace", "demo", "--timeout=30s")
            #expect(deleted.status == 0, "\(deleted)")
            #expect(try await kubectl("get", "namespace", "demo").stderr.contains("(NotFound)"))
            #expect(sim.store.list(ResourceCatalog.all[5], namespace: "demo").items.isEmpty)  // configmaps
        }
    }

    @Test("kubectl get --watch shows pods as they come and go")
    func watchPods() async throws {
        try await withSim(nodes: 1) { sim, kubectl in
            let baseline = sim.store.watcherCount  // the sim's own controllers watch too
            let watcher = try kubectl.background(["get", "pods", "-n", "default", "--watch", "--output-watch-events", "-o", "json"])
            defer { watcher.stop() }
            // The watch starts with the (empty) list; wait for kubectl to be watching before changing anything.
            let store = sim.store
            let watching = await eventually(timeout: .seconds(40)) { store.watcherCount > baseline }
            #expect(watching, "\(watcher.logTail())")
            try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("w1", namespace: "default", labels: ["app": "w"])).expectSuccess()
            try await kubectl("delete", "pod", "w1").expectSuccess()
            let seen = await eventually(timeout: .seconds(40)) { watcher.logTail(lines: 10_000).contains("\"type\":\"DELETED\"") }
            let log = watcher.logTail(lines: 10_000)
            #expect(seen, "\(log)")
            #expect(log.contains("\"type\":\"ADDED\""))
            #expect(log.contains("\"name\":\"w1\""))
        }
    }

    @Test("a watch from a resourceVersion older than the history gets an ERROR event with 410 Expired")
    func watchTooOld() async throws {
        try await withSim(nodes: 1, historyLimit: 5) { _, kubectl in
            for index in 0..<10 { try await kubectl("create", "configmap", "c\(index)") }
            let result = try await kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2&timeoutSeconds=5")
            let event = try JSONValue.parse(json: Data(result.stdout.split(separator: "\n").first.map(String.init)?.utf8 ?? "".utf8))
            #expect(event["type"] == "ERROR")
            #expect(event.value(at: ["object", "code"]) == 410)
            #expect(event.value(at: ["object", "reason"]) == "Expired")
            #expect(event.string(at: "object", "message")?.hasPrefix("too old resource version: 2") == true)
        }
    }

    @Test("a watch from a recent resourceVersion gets only newer events, and a bookmark when asked")
    func watchFromVersion() async throws {
        try await withSim(nodes: 1, bookmarkInterval: .milliseconds(300)) { _, kubectl in
            try await kubectl("create", "configmap", "before")
            let list = try JSONValue.parse(json: Data(try await kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps").stdout.utf8))
            let version = try #require(list.string(at: "metadata", "resourceVersion"))
            try await kubectl("create", "configmap", "after")
            let result = try await kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=\(version)&timeoutSeconds=1")
            let events = try result.stdout.split(separator: "\n").map { try JSONValue.parse(json: Data($0.utf8)) }
            #expect(events.first?["type"] == "ADDED")
            #expect(events.first?.string(at: "object", "metadata", "name") == "after")
            #expect(events.filter { $0["type"] == "ADDED" }.count == 1)
            #expect(events.contains { $0["type"] == "BOOKMARK" }, "\(result)")
        }
    }

    @Test("bad input is answered like the real API server", arguments: [
        (["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", "-"], "{\"apiVersion\": \"v1\", \"kind\": \"Con", "Error from server (BadRequest)"),
        (["get", "--raw", "/api/v1/foos"], nil, "Error from server (NotFound): the server could not find the requested resource"),
        (["get", "foos"], nil, "error: the server doesn't have a resource type \"foos\""),
        (["create", "namespace", "Bad_Name"], nil, "The Namespace \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label"),
        (["get", "pod", "missing"], nil, "Error from server (NotFound): pods \"missing\" not found"),
        (["create", "namespace", "default"], nil, "Error from server (AlreadyExists): namespaces \"default\" already exists"),
        (["get", "pods", "-l", "a b c"], nil, "Error from server (BadRequest)"),
        (["get", "pods", "--field-selector", "spec.color=red"], nil, "Error from server (BadRequest): Unable to find \"/v1, Resource=pods\" that match label selector \"\", field selector \"spec.color=red\": field label not supported: spec.color"),
        (["create", "--raw", "/api/v1/namespaces/nowhere/configmaps", "-f", "-"], "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}", "Error from server (NotFound): namespaces \"nowhere\" not found"),
        (["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", "-"], "{\"apiVersion\":\"apps/v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}", "Error from server (BadRequest)"),
        (["apply", "--server-side", "-f", "-"], "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}}}",
         "is invalid: spec.selector: Required value"),
        (["apply", "--server-side", "-f", "-"], "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"z\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}}}",
         "`selector` does not match template `labels`"),
        // Label keys and values, as ValidateLabels checks them: the pod's own and a workload's template's. With
        // several causes kubectl lists them itself, one `*` line each, from the Status's details.
        (["apply", "--server-side", "-f", "-"], "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"default\",\"labels\":{\"app\":\"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}",
         "The Pod \"p\" is invalid: metadata.labels: Invalid value: \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\": must be no more than 63 characters"),
        (["apply", "--server-side", "-f", "-"], "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"m\",\"namespace\":\"default\",\"labels\":{\"a\":\"-x\",\"b/c/d\":\"y\"}}}",
         "The ConfigMap \"m\" is invalid: \n* metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')\n* metadata.labels: Invalid value: \"b/c/d\": a qualified name must consist of"),
        (["apply", "--server-side", "-f", "-"], "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\",\"Bad_Prefix/k\":\"v\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}}}",
         "spec.template.metadata.labels: Invalid value: \"Bad_Prefix/k\": prefix part a lowercase RFC 1123 subdomain"),
    ] as [([String], String?, String)])
    func badInput(_ arguments: [String], _ body: String?, _ expected: String) async throws {
        try await withSim(nodes: 1) { sim, kubectl in
            let result = try await kubectl.run(arguments, stdin: body)
            #expect(result.status != 0)
            #expect(result.stderr.contains(expected), "\(result)")
            // The server still answers afterwards.
            #expect(try await kubectl("get", "--raw", "/healthz").stdout == "ok")
            _ = sim
        }
    }

    /// NetworkPolicies are validated as `ValidateNetworkPolicySpec` does (and stored, not enforced): a user's broken
    /// policy must fail at apply on the sim as on a cluster, and a valid one of every peer and port shape pass.
    @Test("a NetworkPolicy is validated like the real server: ports, named ports, endPort, peers and ipBlocks; a valid one of every shape is stored")
    func networkPolicyValidation() async throws {
        try await withSim(nodes: 1) { _, kubectl in
            let valid = """
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: scrape, namespace: default}
                spec:
                  podSelector: {matchLabels: {app: shop}}
                  policyTypes: [Ingress, Egress]
                  ingress:
                    - from: [{podSelector: {}, namespaceSelector: {matchLabels: {team: ops}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
                      ports: [{port: metrics}, {port: 8000, endPort: 8010, protocol: TCP}, {protocol: UDP}]
                  egress:
                    - to: [{ipBlock: {cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}}]
                """
            try await kubectl("apply", "--server-side", "-f", "-", stdin: valid).expectSuccess()
            let stored = try await kubectl("get", "networkpolicy", "scrape", "-o", "jsonpath={.spec.ingress[0].ports[1].endPort}")
            #expect(stored.stdout == "8010", "\(stored)")
            let broken = """
                apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: broken, namespace: default}
                spec:
                  podSelector: {}
                  policyTypes: [Ingress, Sideways]
                  ingress:
                    - ports: [{port: 70000}, {port: "--web"}, {port: 80, endPort: 70}, {port: 80, protocol: ICMP}]
                      from: [{}, {ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]
                  egress:
                    - to: [{ipBlock: {cidr: 10.0.0.0/33}}, {ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]
                """
            let refused = try await kubectl("apply", "--server-side", "-f", "-", stdin: broken)
            #expect(refused.status != 0)
            for line in [
                "The NetworkPolicy \"broken\" is invalid: ",
                "* spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
                "* spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "* spec.ingress[0].ports[1].port: Invalid value: \"--web\": must not contain consecutive hyphens",
                "* spec.ingress[0].ports[1].port: Invalid value: \"--web\": must not begin or end with a hyphen",
                "* spec.ingress[0].ports[2].endPort: Invalid value: 80: must be greater than or equal to `port`",
                "* spec.ingress[0].ports[3].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                "* spec.ingress[0].from[0]: Required value: must specify a peer",
                "* spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
                "* spec.egress[0].to[0].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value",
                "* spec.egress[0].to[1].ipBlock.except[0]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
            ] {
                #expect(refused.stderr.contains(line), "missing \(line.debugDescription) in \(refused.stderr)")
            }
            #expect(try await kubectl("get", "networkpolicy", "broken").status != 0, "nothing was stored")
        }
    }

    @Test("conflicting server-side applies are 409 Conflict naming the other manager; --force-conflicts takes over")
    func applyConflict() async throws {
        try await withSim(nodes: 1) { _, kubectl in
            let deployment = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: web, namespace: default}
                spec:
                  replicas: 1
                  selector: {matchLabels: {app: web}}
                  template:
                    metadata: {labels: {app: web}}
                    spec: {containers: [{name: app, image: "web:1"}]}
                """
            try await kubectl("apply", "--server-side", "--field-manager=alice", "-f", "-", stdin: deployment).expectSuccess()
            let scaled = deployment.replacingOccurrences(of: "replicas: 1", with: "replicas: 3")
            let conflict = try await kubectl("apply", "--server-side", "--field-manager=bob", "-f", "-", stdin: scaled)
            #expect(conflict.status != 0)
            #expect(conflict.stderr.contains("Apply failed with 1 conflict: conflict with \"alice\" using apps/v1: .spec.replicas"), "\(conflict)")
            let forced = try await kubectl("apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-", stdin: scaled)
            #expect(forced.status == 0, "\(forced)")
            #expect(try await kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}/{.metadata.generation}").stdout == "3/2")
        }
    }

    @Test("get --raw …/pods/NAME:PORT/proxy/metrics returns the real exporter's metrics")
    func podProxyToRealExporter() async throws {
        try await GunicornExporterFixture.withRedis { exporter, _ in
            try await exporter.sendTraffic(3)
            try await withSim(nodes: 1, kubelet: .none) { _, kubectl in
                try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("exporter", namespace: "default", labels: ["app": "exporter"])).expectSuccess()
                // No kubelet here: the test plays it and reports where a fixture's exporter listens.
                let patched = try await kubectl("patch", "pod", "exporter", "--subresource=status", "--type=merge",
                                          "-p", "{\"status\":{\"podIP\":\"127.0.0.1\",\"phase\":\"Running\"}}")
                #expect(patched.status == 0, "\(patched)")
                let metrics = try await kubectl("get", "--raw", "/api/v1/namespaces/default/pods/exporter:\(exporter.metricsPort)/proxy/metrics")
                #expect(metrics.status == 0, "\(metrics)")
                #expect(metrics.stdout.contains("# TYPE gunicorn_worker_requests"), "\(metrics.stdout.prefix(500))")
                let refused = try await kubectl("get", "--raw", "/api/v1/namespaces/default/pods/exporter:1/proxy/metrics")
                #expect(refused.stderr.contains("Error from server (ServiceUnavailable): error trying to reach service: dial tcp 127.0.0.1:1: connect: connection refused"), "\(refused)")
            }
        }
    }

    @Test("services/NAME:PORT/proxy reaches a ready pod behind the service on a 127.0.1.x address")
    func serviceProxy() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-proxy-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("hello from a pod\n".utf8).write(to: directory.appendingPathComponent("greeting"))
        let port = try TCPProbe.freePort()
        let server = try ChildProcess(name: "http.server", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                      arguments: ["python3", "-m", "http.server", String(port), "--bind", "127.0.1.7", "--directory", directory.path])
        defer { server.stop() }
        try await server.waitForPort(port, host: "127.0.1.7")
        try await withSim(nodes: 1, kubelet: .none) { _, kubectl in
            let service = """
                apiVersion: v1
                kind: Service
                metadata: {name: web, namespace: default}
                spec:
                  selector: {app: web}
                  ports: [{name: http, port: 80, targetPort: \(port)}]
                """
            try await kubectl("apply", "--server-side", "-f", "-", stdin: service + "\n---\n" + Self.pod("web-1", namespace: "default", labels: ["app": "web"])).expectSuccess()
            let unready = try await kubectl("get", "--raw", "/api/v1/namespaces/default/services/web:http/proxy/greeting")
            #expect(unready.stderr.contains("(ServiceUnavailable): no endpoints available for service \"web\""), "\(unready)")
            let status = "{\"status\":{\"podIP\":\"127.0.1.7\",\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"
            try await kubectl("patch", "pod", "web-1", "--subresource=status", "--type=merge", "-p", status).expectSuccess()
            let answer = try await kubectl("get", "--raw", "/api/v1/namespaces/default/services/web:http/proxy/greeting")
            #expect(answer.stdout == "hello from a pod\n", "\(answer)")
        }
    }
}

/// The DaemonSet controller with the placeholder kubelet, as `kubectl rollout status` sees it.
@Suite("sim controllers", .simSlot)
struct SimControllerTests {
    /// kind's single-node cluster removes the control plane's taint, or nothing could run.
    @Test("a 1-node sim: the control plane has no taint, and a DaemonSet's one pod runs on it")
    func singleNode() async throws {
        var options = SimulatedCluster.Options(nodes: 1)
        options.instantKubelet = true
        try await SimulatedCluster.with(options: options) { sim in
            let kubectl = try Kubectl(kubeconfig: sim.kubeconfigPath)
            defer { kubectl.cleanUp() }
            let node = try await kubectl("get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} taints=[{.spec.taints}]{end}")
            #expect(node.stdout == "kverify-sim-control-plane taints=[]", "\(node)")
            try await kubectl("apply", "--server-side", "-f", "-", stdin: KubectlAcceptanceTests.manifest).expectSuccess()
            try await kubectl("rollout", "status", "ds/exporter", "-n", "demo", "--timeout=60s").expectSuccess()
            let nodes = try await kubectl("get", "pods", "-n", "demo", "-l", "app=exporter", "-o", "jsonpath={.items[*].spec.nodeName}")
            #expect(nodes.stdout == "kverify-sim-control-plane", "\(nodes)")
        }
    }

    @Test("a DaemonSet gets one pod per worker (the control plane's taint keeps it off), and rollout status succeeds")
    func daemonSetRollout() async throws {
        var options = SimulatedCluster.Options(nodes: 3)
        options.instantKubelet = true
        try await SimulatedCluster.with(options: options) { sim in
            let kubectl = try Kubectl(kubeconfig: sim.kubeconfigPath)
            defer { kubectl.cleanUp() }
            try await kubectl("apply", "--server-side", "-f", "-", stdin: KubectlAcceptanceTests.manifest).expectSuccess()
            let rollout = try await kubectl("rollout", "status", "ds/exporter", "-n", "demo", "--timeout=60s")
            #expect(rollout.status == 0, "\(rollout)")
            #expect(rollout.stdout.contains("daemon set \"exporter\" successfully rolled out"))
            let nodes = try await kubectl("get", "pods", "-n", "demo", "-l", "app=exporter", "-o", "jsonpath={.items[*].spec.nodeName}")
            #expect(nodes.stdout.split(separator: " ").sorted() == ["kverify-sim-worker", "kverify-sim-worker2"])
            let ready = try await kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=exporter", "-n", "demo", "--timeout=30s")
            #expect(ready.status == 0, "\(ready)")

            // A new template rolls pods over to the new generation; a toleration adds the control plane.
            let updated = KubectlAcceptanceTests.manifest.replacingOccurrences(of: "demo:1", with: "demo:2")
                .replacingOccurrences(of: "      containers:", with: "      tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]\n      containers:")
            try await kubectl("apply", "--server-side", "-f", "-", stdin: updated).expectSuccess()
            let second = try await kubectl("rollout", "status", "ds/exporter", "-n", "demo", "--timeout=60s")
            #expect(second.status == 0, "\(second)")
            let images = try await kubectl("get", "pods", "-n", "demo", "-l", "app=exporter,pod-template-generation=2", "-o", "jsonpath={.items[*].spec.containers[0].image}")
            #expect(images.stdout.split(separator: " ") == ["demo:2", "demo:2", "demo:2"], "\(images)")
            let status = try await kubectl("get", "ds", "exporter", "-n", "demo", "-o", "jsonpath={.status.desiredNumberScheduled}/{.status.numberAvailable}/{.status.observedGeneration}")
            #expect(status.stdout == "3/3/2")

            // Deleting the DaemonSet cascades to its pods.
            try await kubectl("delete", "ds", "exporter", "-n", "demo").expectSuccess()
            let store = sim.store
            let gone = await eventually { store.list(ResourceCatalog.all[2], namespace: "demo").items.isEmpty }
            #expect(gone)
        }
    }
}

/// TLS and the kubeconfig: what kind gives a user, and nothing more on disk.
@Suite("sim TLS and kubeconfig")
struct SimTLSTests {
    @Test("start refuses a kubeconfig path holding a file the sim did not write, before anything listens; the file stays")
    func foreignKubeconfig() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-foreign-kc-\(UUID().uuidString.prefix(8))").path
        try "current-context: prod\n".write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        await #expect(throws: SimError.self) { _ = try await SimulatedCluster.start(options: .init(nodes: 1, kubeconfigPath: path)) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "current-context: prod\n")
    }

    @Test("the kubeconfig has kind's shape, mode 0600, and the sim removes it and its state on stop")
    func kubeconfigShape() async throws {
        let sim = try await SimulatedCluster.start(options: .init(nodes: 1))
        let path = sim.kubeconfigPath, state = sim.stateDirectory
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for key in ["certificate-authority-data:", "client-certificate-data:", "client-key-data:", "server: https://127.0.0.1:\(sim.port)", "current-context: kind-kverify-sim"] {
            #expect(text.contains(key), "missing \(key)")
        }
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // No private key in the state directory: keys only live in memory and in the kubeconfig.
        let files = try FileManager.default.subpathsOfDirectory(atPath: state.path)
        for file in files {
            let contents = (try? String(contentsOf: state.appendingPathComponent(file), encoding: .utf8)) ?? ""
            #expect(!contents.contains("PRIVATE KEY"), "\(file) holds a private key")
        }
        await sim.stop()
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: state.path))
    }

    @Test("a client without a certificate is refused; the server certificate is valid for 127.0.0.1")
    func clientCertificateRequired() async throws {
        try await withSim(nodes: 1) { sim, kubectl in
            let certificates = try #require(sim.certificates)
            let anonymous = """
                apiVersion: v1
                kind: Config
                clusters: [{name: sim, cluster: {server: "\(sim.serverURL)", certificate-authority-data: \(certificates.caCertificatePEM.base64EncodedString())}}]
                contexts: [{name: sim, context: {cluster: sim, user: nobody}}]
                current-context: sim
                users: [{name: nobody, user: {}}]
                """
            let path = kubectl.cacheDirectory.appendingPathComponent("anonymous.yaml")
            try Data(anonymous.utf8).write(to: path)
            let refused = try Kubectl(kubeconfig: path.path)
            defer { refused.cleanUp() }
            let result = try await refused("get", "--raw", "/version")
            #expect(result.status != 0)
            // Go's client sees the handshake torn down after the server asked for a certificate it did not get.
            #expect(!result.stdout.contains("gitVersion"))
            #expect(!result.stderr.contains("gitVersion"), "\(result)")
            // The same CA with the client certificate works: verification is on (no insecure-skip-tls-verify).
            #expect(try await kubectl("get", "--raw", "/version").stdout.contains("\"gitVersion\":\"v1.32.4\""))
        }
    }
}
