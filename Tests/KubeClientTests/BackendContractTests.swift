import Findings
import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import Testing

/// The same operations through both backends against the fake API server: same answers, same errors.
@Suite("KubeAPI contract: REST and kubectl backends")
struct BackendContractTests {
    static let daemonSet = """
        apiVersion: apps/v1
        kind: DaemonSet
        metadata:
          name: exporter
          labels: {app: exporter}
        spec:
          selector: {matchLabels: {app: exporter}}
          template:
            metadata: {labels: {app: exporter}}
            spec:
              containers: [{name: app, image: "demo:1"}]
        """

    @Test("version, nodes, label-selected pods, a pod, events by uid", arguments: Backend.allCases)
    func reads(_ kind: Backend) async throws {
        try await Workspace.withServer(kind) { _, api, _ in
            #expect(try await api.serverVersion().gitVersion == "v1.32.4")
            let nodes = try await api.nodes()
            #expect(nodes.map { $0.metadata.name ?? "" } == ["node-0", "node-1", "node-2"])
            #expect(nodes[0].roles == ["control-plane"])
            #expect(nodes[0].spec?.taints.map(\.summary) == ["node-role.kubernetes.io/control-plane:NoSchedule"])
            #expect(nodes.filter(\.isSchedulable).count == 2)

            let pods = try await api.list(Pod.self, options: ListOptions(labelSelector: "app=exporter"))
            #expect(pods.compactMap(\.metadata.name) == ["exporter-0", "exporter-1"])
            let pod = try await api.get(Pod.self, name: "exporter-0")
            #expect(pod.isReady)
            #expect(pod.spec?.nodeName == "node-1")
            let byName = try await api.list(Pod.self, namespace: "obs", options: ListOptions(fieldSelector: "metadata.name=other"))
            #expect(byName.compactMap(\.metadata.name) == ["other"])

            let events = try await api.events(forUID: "uid-pods-exporter-0")
            #expect(events.map(\.reason) == ["BackOff"])
            #expect(events.first?.count == 3)
        }
    }

    @Test("a missing object is .notFound naming it (exit 1)", arguments: Backend.allCases)
    func notFound(_ kind: Backend) async throws {
        try await Workspace.withServer(kind) { _, api, _ in
            let error = await kubeError { _ = try await api.get(Pod.self, name: "ghost") }
            #expect(error?.code == .notFound)
            #expect(error?.message.contains("ghost") == true)
            #expect(error?.isCausedByInput == false)
        }
    }

    @Test("server-side apply creates, updates, reports conflicts and invalid objects", arguments: Backend.allCases)
    func apply(_ kind: Backend) async throws {
        try await Workspace.withServer(kind) { server, api, _ in
            let manifests = try ManifestLoader.load(yaml: Self.daemonSet, file: "ds.yaml")
            try await api.apply(manifests)
            let created = try await api.get(DaemonSet.self, name: "exporter")
            #expect(created.metadata.namespace == "obs")
            #expect(created.spec?.updateStrategy?.type == "RollingUpdate")
            #expect(created.status == nil)

            // The same manager may change its own fields.
            let updated = try ManifestLoader.load(yaml: Self.daemonSet.replacingOccurrences(of: "demo:1", with: "demo:2"), file: "ds.yaml")
            try await api.apply(updated)
            #expect(try await api.get(DaemonSet.self, name: "exporter").metadata.generation == 2)

            // Another manager changing them conflicts, unless forced.
            let other = try ManifestLoader.load(yaml: Self.daemonSet.replacingOccurrences(of: "demo:1", with: "demo:3"), file: "ds.yaml")
            let conflict = await kubeError { try await api.apply(other, fieldManager: "someone-else") }
            #expect(conflict?.code == .conflict)
            #expect(conflict?.message.contains("ds.yaml document 0") == true)
            #expect(conflict?.message.contains("kverify") == true)
            try await api.apply(other, fieldManager: "someone-else", force: true)

            let invalid = try ManifestLoader.load(yaml: "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: broken}\nspec: {}\n", file: "bad.yaml")
            let error = await kubeError { try await api.apply(invalid) }
            #expect(error?.code == .invalid)
            #expect(error?.message.contains("spec.selector") == true)
            #expect(error?.isCausedByInput == true)

            let unknown = try ManifestLoader.load(yaml: "apiVersion: apps/v1\nkind: StatefulThing\nmetadata: {name: x}\n", file: "u.yaml")
            let unknownError = await kubeError { try await api.apply(unknown) }
            #expect(unknownError?.code == .unknownKind)
            #expect(unknownError?.message.contains("DaemonSet, Deployment") == true)
            _ = server
        }
    }

    @Test("logs with container and tail, proxy GET, access reviews", arguments: Backend.allCases)
    func podEndpoints(_ kind: Backend) async throws {
        try await Workspace.withServer(kind, deny: ["pods/proxy"]) { _, api, _ in
            let logs = try await api.logs(pod: "exporter-0", namespace: nil, container: "metrics", tailLines: 2)
            #expect(logs == "metrics line 9\nmetrics line 10\n")
            let body = try await api.proxyGet(pod: "exporter-1", port: 9093, path: "/metrics", namespace: "obs")
            #expect(String(decoding: body, as: UTF8.self).hasPrefix("# proxied to pod exporter-1 port 9093 path /metrics"))
            let missing = await kubeError { _ = try await api.proxyGet(pod: "ghost", port: 9093, path: "metrics", namespace: nil) }
            #expect(missing?.code == .notFound)
            #expect(try await api.canI(.init(verb: "list", resource: "pods", namespace: "obs")) == true)
            #expect(try await api.canI(.init(verb: "get", resource: "pods", subresource: "proxy", namespace: "obs")) == false)
        }
    }

    @Test("namespace create (idempotent) and delete-and-wait; pod delete-and-wait", arguments: Backend.allCases)
    func lifecycle(_ kind: Backend) async throws {
        try await Workspace.withServer(kind) { _, api, _ in
            try await api.createNamespace("kverify-test")
            try await api.createNamespace("kverify-test")
            #expect(try await api.get(Namespace.self, name: "kverify-test").status?.phase == "Active")
            try await api.deleteNamespace("kverify-test", waitUntilGone: .seconds(20))
            #expect(await kubeError { _ = try await api.get(Namespace.self, name: "kverify-test") }?.code == .notFound)

            try await api.deleteAndWait(.pods, name: "other", namespace: "obs", propagation: .foreground, timeout: .seconds(20))
            #expect(try await api.list(Pod.self).count == 2)
            // Deleting what is already gone is done at once.
            try await api.deleteAndWait(.pods, name: "other", namespace: "obs", propagation: .background, timeout: .seconds(5))
        }
    }

    @Test("watch: synced snapshot, then changes; 410 Gone → relist", arguments: Backend.allCases)
    func watch(_ kind: Backend) async throws {
        try await Workspace.withServer(kind) { server, api, _ in
            // Every watch request that resumes from a resourceVersion first gets one 410.
            try server.fault(kind: "watch_gone", path: "/api/v1/namespaces/obs/pods", count: 1)
            var seen: [WatchUpdate.UpdateType] = []
            var names: [String] = []
            try await withTestDeadline(.seconds(30)) {
                for try await update in api.watch(.pods, namespace: "obs", options: ListOptions(labelSelector: "app=exporter")) {
                    seen.append(update.type)
                    if update.type == .synced {
                        #expect(update.snapshot.count == 2)
                        try server.touch(plural: "pods", namespace: "obs", name: seen.count == 1 ? "exporter-0" : "exporter-1")
                    }
                    if update.type == .modified, let pod = try update.decode(Pod.self) {
                        names.append(pod.metadata.name ?? "")
                        break
                    }
                }
            }
            // The first watch resumed from the list's resourceVersion and got 410, so a second list happened; the
            // first change is in that list's snapshot, the second arrives as an event.
            #expect(seen.filter { $0 == .synced }.count == 2)
            #expect(names == ["exporter-1"])
        }
    }

    @Test("watch events delivered in 7-byte chunks decode intact", arguments: Backend.allCases)
    func oddChunks(_ kind: Backend) async throws {
        try await Workspace.withServer(kind) { server, api, _ in
            try server.fault(kind: "watch_chunks", path: "/api/v1/nodes", ["size": "7"])
            try await withTestDeadline(.seconds(30)) {
            for try await update in api.watch(.nodes, namespace: nil) {
                if update.type == .synced {
                    try server.touch(plural: "nodes", namespace: nil, name: "node-2")
                } else if let node = try update.decode(Node.self) {
                    #expect(update.type == .modified)
                    #expect(node.metadata.name == "node-2")
                    #expect(node.metadata.labels?["touched"] != nil)
                    break
                }
            }
            }
        }
    }

    struct StatusCase: Sendable, CustomTestStringConvertible {
        var backend: Backend
        var code: Int
        var reason: String
        var expected: KubeError.Code
        var testDescription: String { "\(backend) \(code) \(reason) → \(expected)" }
    }

    static let statusCases: [StatusCase] = Backend.allCases.flatMap { backend in
        [
            StatusCase(backend: backend, code: 401, reason: "Unauthorized", expected: .unauthorized),
            StatusCase(backend: backend, code: 403, reason: "Forbidden", expected: .forbidden),
            StatusCase(backend: backend, code: 404, reason: "NotFound", expected: .notFound),
            StatusCase(backend: backend, code: 409, reason: "Conflict", expected: .conflict),
            StatusCase(backend: backend, code: 409, reason: "AlreadyExists", expected: .alreadyExists),
            StatusCase(backend: backend, code: 410, reason: "Expired", expected: .gone),
            StatusCase(backend: backend, code: 422, reason: "Invalid", expected: .invalid),
            StatusCase(backend: backend, code: 429, reason: "TooManyRequests", expected: .tooManyRequests),
            StatusCase(backend: backend, code: 500, reason: "InternalError", expected: .serverError),
            StatusCase(backend: backend, code: 503, reason: "ServiceUnavailable", expected: .serverError),
        ]
    }

    @Test("every Status code maps to the same typed error through both backends", arguments: statusCases)
    func statusMapping(_ c: StatusCase) async throws {
        try await Workspace.withServer(c.backend) { server, api, _ in
            try server.fault(kind: "status", path: "/api/v1/namespaces/obs/pods/exporter-0", ["code": "\(c.code)", "reason": c.reason])
            let error = await kubeError { _ = try await api.get(Pod.self, name: "exporter-0") }
            #expect(error?.code == c.expected, "\(error?.message ?? "")")
            #expect(error?.message.contains("exporter-0") == true, "\(error?.message ?? "")")
            if c.code == 422 { #expect(error?.message.contains("spec.selector") == true, "\(error?.message ?? "")") }
        }
    }

    @Test("an HTML page instead of the API is .badResponse (exit 3)", arguments: Backend.allCases)
    func html(_ kind: Backend) async throws {
        try await Workspace.withServer(kind) { server, api, _ in
            try server.fault(kind: "html", path: "/api/v1/nodes")
            let error = await kubeError { _ = try await api.nodes() }
            #expect(error?.code == .badResponse, "\(error?.message ?? "")")
            #expect(error?.isCausedByInput == false)
        }
    }

    @Test("a server that is not listening is .unreachable (exit 3)", arguments: Backend.allCases)
    func unreachable(_ kind: Backend) async throws {
        try await KubeAPIServerFixture.with { server in
            try await Workspace.with { workspace in
                let port = try TCPProbe.freePort()
                let path = try server.writeKubeconfig(to: workspace.directory, server: "https://127.0.0.1:\(port)")
                let api = try workspace.backend(kind, kubeconfig: path, requestTimeout: .seconds(5))
                let error = await kubeError { _ = try await api.nodes() }
                #expect(error?.code == .unreachable, "\(error?.message ?? "")")
                #expect(error?.isCausedByInput == false)
            }
        }
    }
}
