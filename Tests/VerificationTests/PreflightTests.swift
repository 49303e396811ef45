import Foundation
import KVerifyTestSupport
import Testing

/// `kverify preflight`, run as a user would, against a real HTTPS API server (Python, openssl-made PKI, client
/// certificates required) through both backends: the REST client over libcurl and the real kubectl.
@Suite("kverify preflight")
struct PreflightTests {
    enum Backend: String, CaseIterable, Sendable { case api, kubectl }

    private func run(_ server: KubeAPIServerFixture, _ backend: Backend, _ extra: [String],
                     credentials: KubeAPIServerFixture.Credentials = .clientCertificate, trustOtherCA: Bool = false,
                     overrideServer: String? = nil) async throws -> KVerifyRun {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-preflight-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let kubeconfig = try server.writeKubeconfig(to: directory, credentials: credentials, trustOtherCA: trustOtherCA,
                                                    server: overrideServer)
        return try await KVerifyRun.run(
            ["preflight", "--kubeconfig", kubeconfig, "--backend", backend.rawValue, "--output", "json"] + extra,
            environment: ["KUBECACHEDIR": directory.appendingPathComponent("cache").path])
    }

    private func findings(_ run: KVerifyRun) throws -> [[String: Any]] {
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
                                  "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        return try #require(report["findings"] as? [[String: Any]])
    }

    @Test("a healthy 3-node cluster is ready; nodes are listed with roles and taints", arguments: Backend.allCases)
    func ready(backend: Backend) async throws {
        try await KubeAPIServerFixture.with(nodes: 3) { server in
            let result = try await run(server, backend, ["--nodes", "3", "--schedulable-nodes", "2"])
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            let findings = try findings(result)
            let nodes = findings.filter { $0["checkID"] as? String == "cluster.node" }
            #expect(nodes.count == 3)
            #expect(nodes.contains { ($0["observed"] as? String)?.contains("roles control-plane, taints node-role.kubernetes.io/control-plane:NoSchedule") == true })
            let count = try #require(findings.first { $0["checkID"] as? String == "cluster.ready-nodes" })
            #expect(count["observed"] as? String == "3 nodes: 3 Ready, 2 schedulable")
            #expect(findings.filter { $0["checkID"] as? String == "cluster.permission" && $0["status"] as? String == "pass" }.count == 13)
        }
    }

    @Test("too few schedulable nodes fails with exit 1 and says what to do", arguments: Backend.allCases)
    func tooFew(backend: Backend) async throws {
        try await KubeAPIServerFixture.with(nodes: 3, notReady: 1) { server in
            let result = try await run(server, backend, ["--nodes", "3", "--schedulable-nodes", "2"])
            #expect(result.status == 1)
            let findings = try findings(result)
            let ready = try #require(findings.first { $0["checkID"] as? String == "cluster.ready-nodes" })
            #expect(ready["status"] as? String == "fail")
            #expect(ready["observed"] as? String == "3 nodes: 2 Ready, 1 schedulable")
            #expect(findings.contains { $0["checkID"] as? String == "cluster.node" && $0["status"] as? String == "warn" })
        }
    }

    @Test("a denied permission fails with exit 1 naming it", arguments: Backend.allCases)
    func denied(backend: Backend) async throws {
        try await KubeAPIServerFixture.with(deny: ["pods/proxy"]) { server in
            let result = try await run(server, backend, [])
            #expect(result.status == 1)
            let denied = try findings(result).filter { $0["status"] as? String == "fail" }
            #expect(denied.map { $0["subject"] as? String } == ["get pods/proxy"])
        }
    }

    @Test("a server certificate from the wrong CA is exit 3 with a TLS message", arguments: Backend.allCases)
    func wrongCA(backend: Backend) async throws {
        try await KubeAPIServerFixture.with { server in
            let result = try await run(server, backend, [], trustOtherCA: true)
            #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
            let message = (try findings(result).first?["observed"] as? String ?? "").lowercased()
            #expect(message.contains("certificate") || message.contains("tls") || message.contains("x509"), "\(message)")
        }
    }

    @Test("no client certificate for a server that requires one is exit 3", arguments: Backend.allCases)
    func missingClientCertificate(backend: Backend) async throws {
        try await KubeAPIServerFixture.with { server in
            let result = try await run(server, backend, [], credentials: .none)
            #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
        }
    }

    @Test("nothing listening is exit 3", arguments: Backend.allCases)
    func unreachable(backend: Backend) async throws {
        try await KubeAPIServerFixture.with { server in
            let result = try await run(server, backend, [], overrideServer: "https://127.0.0.1:\(try TCPProbe.freePort())")
            #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
        }
    }

    @Test("a kubeconfig that does not exist, or a context it lacks, is exit 2 with a message")
    func badKubeconfig() async throws {
        let missing = try await KVerifyRun.run(["preflight", "--kubeconfig", "/nonexistent/kubeconfig"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent/kubeconfig"), "\(missing.stderr)")
    }
}
