import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import KubeSim
import Processes
import SimAPIServer
import Testing

/// The sim offers HTTP/2 over TLS as kube-apiserver does (ALPN `h2`, then `http/1.1`); what each client negotiated is
/// read from the sim's own connection counts, and from real curl's `%{http_version}`.
@Suite("HTTP/2 between the sim and its clients", .simSlot)
struct HTTP2Tests {
    private static func withInstantSim<T: Sendable>(http2: Bool = true, _ body: (SimulatedCluster) async throws -> T) async throws -> T {
        var options = SimulatedCluster.Options(nodes: 1)
        options.kubelet = .instant
        options.http2 = http2
        return try await SimulatedCluster.with(options: options, body)
    }

    @Test("the REST backend multiplexes 50 concurrent requests over one HTTP/2 connection")
    func restMultiplexes() async throws {
        try await Self.withInstantSim { sim in
            try await Workspace.with { workspace in
                let api = try workspace.backend(.rest, kubeconfig: sim.kubeconfigPath)
                let namespaces = try await api.resource(apiVersion: "v1", kind: "Namespace")
                let before = sim.traffic
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<50 {
                        group.addTask { _ = try await api.get(namespaces, name: "default", namespace: nil) }
                    }
                    try await group.waitForAll()
                }
                let after = sim.traffic
                // The discovery request above opened the connection; the 50 GETs rode it as streams.
                #expect(after.http2Connections == 1 && before.http2Connections == 1, "\(before) → \(after)")
                #expect(after.http2Streams - before.http2Streams == 50, "\(before) → \(after)")
                #expect(after.http1Connections == 0, "\(after)")
                // Each stream's request loop ends by itself once both sides ended it (the server does not reset it).
                var open = after.openStreams
                for _ in 0..<100 where open > 0 {
                    try await Task.sleep(for: .milliseconds(50))
                    open = sim.traffic.openStreams
                }
                #expect(open == 0, "\(sim.traffic)")
            }
        }
    }

    @Test("real kubectl negotiates h2 for its requests")
    func kubectlNegotiates() async throws {
        try await Self.withInstantSim { sim in
            try await Workspace.with { workspace in
                var environment = ProcessInfo.processInfo.environment
                environment["KUBECACHEDIR"] = workspace.directory.appendingPathComponent("cache").path
                environment["HOME"] = workspace.directory.path
                let result = try await ProcessRunner.run("kubectl", arguments: ["--kubeconfig", sim.kubeconfigPath, "get", "namespaces", "-o", "name"],
                                                         environment: environment, timeout: .seconds(60))
                #expect(result.exitCode == 0, "\(String(decoding: result.stderr, as: UTF8.self))")
                #expect(String(decoding: result.stdout, as: UTF8.self).contains("namespace/default"))
                let traffic = sim.traffic
                // Discovery and the list: several requests, all streams of HTTP/2 connections.
                #expect(traffic.http2Connections >= 1 && traffic.http2Streams >= 2 && traffic.http1Connections == 0, "\(traffic)")
            }
        }
    }

    @Test("curl gets HTTP/2 when it asks for it and HTTP/1.1 when it asks for that; --http1-only offers no h2", arguments: [true, false])
    func curlChooses(http2: Bool) async throws {
        try await Self.withInstantSim(http2: http2) { sim in
            try await Workspace.with { workspace in
                let certificates = try #require(sim.certificates)
                let files = ["ca.pem": certificates.caCertificatePEM, "cert.pem": certificates.clientCertificatePEM,
                             "key.pem": certificates.clientKeyPEM]
                for (name, data) in files { try data.write(to: workspace.directory.appendingPathComponent(name)) }
                func curl(_ version: String) async throws -> (version: String, body: String) {
                    let output = workspace.directory.appendingPathComponent("body-\(version)").path
                    let result = try await ProcessRunner.run("curl", arguments: [
                        "--silent", "--show-error", version, "--cacert", workspace.directory.appendingPathComponent("ca.pem").path,
                        "--cert", workspace.directory.appendingPathComponent("cert.pem").path,
                        "--key", workspace.directory.appendingPathComponent("key.pem").path,
                        "--output", output, "--write-out", "%{http_version}", sim.serverURL + "/api/v1/namespaces/default",
                    ], environment: ProcessInfo.processInfo.environment, timeout: .seconds(30))
                    #expect(result.exitCode == 0, "\(String(decoding: result.stderr, as: UTF8.self))")
                    return (String(decoding: result.stdout, as: UTF8.self), (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
                }
                let asked2 = try await curl("--http2")
                #expect(asked2.version == (http2 ? "2" : "1.1"))
                #expect(asked2.body.contains("\"name\":\"default\""), "\(asked2.body.prefix(300))")
                let asked1 = try await curl("--http1.1")
                #expect(asked1.version == "1.1")
                #expect(asked1.body.contains("\"name\":\"default\""), "\(asked1.body.prefix(300))")
                let traffic = sim.traffic
                #expect(traffic.http2Connections == (http2 ? 1 : 0) && traffic.http1Connections == (http2 ? 1 : 2), "\(traffic)")
            }
        }
    }
}
