import Findings
import Foundation
import KVerifyTestSupport
import KubeClient
import KubeConfig
import KubeModel
import Testing

/// TLS, authentication and retry behaviour against the fake API server over real HTTPS.
@Suite("TLS, auth and retries")
struct TransportTests {
    @Test("a kubeconfig trusting the wrong CA fails with .tlsFailed (exit 3)", arguments: Backend.allCases)
    func wrongCA(_ kind: Backend) async throws {
        try await KubeAPIServerFixture.with { server in
            try await Workspace.with { workspace in
                let path = try server.writeKubeconfig(to: workspace.directory, trustOtherCA: true)
                let api = try workspace.backend(kind, kubeconfig: path, requestTimeout: .seconds(10))
                let error = await kubeError { _ = try await api.serverVersion() }
                #expect(error?.code == .tlsFailed, "\(error?.message ?? "")")
                #expect(error?.isCausedByInput == false)
            }
        }
    }

    @Test("no client certificate where one is required fails clearly", arguments: Backend.allCases)
    func missingClientCertificate(_ kind: Backend) async throws {
        try await KubeAPIServerFixture.with(clientAuth: .required) { server in
            try await Workspace.with { workspace in
                let path = try server.writeKubeconfig(to: workspace.directory, credentials: .none)
                let api = try workspace.backend(kind, kubeconfig: path, requestTimeout: .seconds(10))
                let error = await kubeError { _ = try await api.nodes() }
                // With TLS 1.3 the refusal arrives as an alert after the client finished its handshake; libcurl sees
                // either that alert or, when the server closed first, a dead socket. kubectl, finding no
                // credentials, prompts for a user name and fails on the closed stdin ("error: EOF"). All exit 3.
                let accepted: [KubeError.Code] = [.tlsFailed, .unreachable, .unauthorized]
                #expect(error.map { accepted.contains($0.code) } == true, "\(error?.message ?? "")")
                #expect(error?.isCausedByInput == false)
            }
        }
    }

    @Test("token auth: the right token works, a wrong one is .unauthorized and never printed", arguments: Backend.allCases)
    func tokens(_ kind: Backend) async throws {
        try await KubeAPIServerFixture.with(clientAuth: .optional, token: "good-token-123") { server in
            try await Workspace.with { workspace in
                let good = try server.writeKubeconfig(to: workspace.directory, credentials: .token("good-token-123"))
                #expect(try await workspace.backend(kind, kubeconfig: good).nodes().count == 3)
                let bad = try server.writeKubeconfig(to: workspace.directory, credentials: .token("leaky-token-456"))
                let error = await kubeError { _ = try await workspace.backend(kind, kubeconfig: bad).nodes() }
                #expect(error?.code == .unauthorized, "\(error?.message ?? "")")
                #expect(error?.message.contains("leaky-token-456") == false)
                #expect(error?.isCausedByInput == false)
            }
        }
    }

    @Test("REST: 429 with Retry-After is retried no earlier than the server asked")
    func retryAfter() async throws {
        try await Workspace.withServer(.rest) { server, api, _ in
            try server.fault(kind: "retry429", path: "/api/v1/nodes", count: 1, ["retry_after": "1"])
            #expect(try await api.nodes().count == 3)
            let times = try server.requests().filter { ($0["path"] as? String)?.hasPrefix("/api/v1/nodes") == true }
                .compactMap { $0["time"] as? Double }
            #expect(times.count == 2)
            if times.count == 2 { #expect(times[1] - times[0] >= 1.0, "retried after \(times[1] - times[0]) s") }
        }
    }

    @Test("REST: 503s and a reset are retried for GET; retries run out into .serverError")
    func retries() async throws {
        try await Workspace.withServer(.rest) { server, api, _ in
            try server.fault(kind: "status", path: "/api/v1/nodes", count: 2, ["code": "503", "reason": "ServiceUnavailable"])
            #expect(try await api.nodes().count == 3)
            try server.fault(kind: "reset", path: "/api/v1/namespaces/obs/pods", count: 1)
            #expect(try await api.list(Pod.self).count == 3)
            try server.reset()
            try server.fault(kind: "status", path: "/version", ["code": "500", "reason": "InternalError"])
            let error = await kubeError { _ = try await api.serverVersion() }
            #expect(error?.code == .serverError)
            #expect(error?.message.contains("after 3 attempts") == true, "\(error?.message ?? "")")
            #expect(try server.requests().filter { $0["path"] as? String == "/version" }.count == 3)
        }
    }

    @Test("kubectl backend: a run that meets a 503 is run again and counted; retries run out into .serverError")
    func kubectlRetries() async throws {
        try await Workspace.withServer(.kubectl) { server, api, _ in
            try server.fault(kind: "status", path: "/api/v1/nodes", count: 2, ["code": "503", "reason": "ServiceUnavailable"])
            #expect(try await api.nodes().count == 3)
            #expect(api.retries?.snapshot == ["HTTP 503": 2])
            try server.reset()
            try server.fault(kind: "status", path: "/api/v1/nodes", ["code": "500", "reason": "InternalError"])
            let error = await kubeError { _ = try await api.nodes() }
            #expect(error?.code == .serverError)
            #expect(error?.message.contains("after 3 attempts") == true, "\(error?.message ?? "")")
            #expect(try server.requests().filter { ($0["path"] as? String)?.hasPrefix("/api/v1/nodes") == true }.count == 3)
            #expect(api.retries?.snapshot == ["HTTP 503": 2, "HTTP 500": 2])
            // A NotFound is an answer, not a transient error: one run, no retry.
            _ = await kubeError { _ = try await api.get(Pod.self, name: "nosuch", namespace: "obs") }
            #expect(api.retries?.total == 4)
        }
    }

    @Test("REST: an HTTP/1.0 answer is read; a body cut mid-way is an error, not a hang")
    func oddServers() async throws {
        try await Workspace.withServer(.rest) { server, api, _ in
            try server.fault(kind: "http10", path: "/version", count: 1)
            #expect(try await api.serverVersion().gitVersion == "v1.32.4-http10")
            try server.fault(kind: "close_mid_body", path: "/api/v1/nodes")
            let error = await kubeError { _ = try await api.nodes() }
            #expect(error?.code == .unreachable, "\(error?.message ?? "")")
        }
    }

    @Test("REST: a watch that never sends a newline, or stalls, ends with an error instead of hanging")
    func badWatches() async throws {
        try await KubeAPIServerFixture.with { server in
            try await Workspace.with { workspace in
                let path = try server.writeKubeconfig(to: workspace.directory)
                let api = RESTBackend(configuration: try workspace.configuration(path), watchGrace: .seconds(1), retry: Workspace.retry)
                let policy = WatchPolicy(timeoutSeconds: 1, maxReconnects: 1, backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(20)))
                try server.fault(kind: "watch_stall", path: "/api/v1/nodes")
                let stalled = await kubeError {
                    for try await _ in api.watch(.nodes, namespace: nil, policy: policy) {}
                }
                #expect(stalled?.code == .timedOut || stalled?.code == .badResponse, "\(stalled?.message ?? "")")
                try server.reset()
                try server.fault(kind: "watch_no_newline", path: "/api/v1/namespaces/obs/pods")
                let endless = await kubeError {
                    for try await _ in api.watch(.pods, namespace: "obs", policy: WatchPolicy(timeoutSeconds: 30, maxReconnects: 0)) {}
                }
                #expect(endless?.code == .badResponse, "\(endless?.message ?? "")")
            }
        }
    }

    @Test("REST: tls-server-name is what the certificate is checked against")
    func tlsServerName() async throws {
        try await KubeAPIServerFixture.with { server in
            try await Workspace.with { workspace in
                let path = try server.writeKubeconfig(to: workspace.directory)
                var configuration = try workspace.configuration(path)
                configuration.cluster.tlsServerName = "localhost"
                #expect(try await RESTBackend(configuration: configuration).serverVersion().major == "1")
                configuration.cluster.tlsServerName = "not-in-the-certificate.test"
                let error = await kubeError { _ = try await RESTBackend(configuration: configuration, retry: Workspace.retry).serverVersion() }
                #expect(error?.code == .tlsFailed, "\(error?.message ?? "")")
            }
        }
    }

    @Test("REST: an exec plugin's token authenticates")
    func execPlugin() async throws {
        try await KubeAPIServerFixture.with(clientAuth: .optional, token: "from-plugin") { server in
            try await Workspace.with { workspace in
                let plugin = workspace.directory.appendingPathComponent("plugin.sh")
                try "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"from-plugin\"}}'\n"
                    .write(to: plugin, atomically: false, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: plugin.path)
                var configuration = try workspace.configuration(try server.writeKubeconfig(to: workspace.directory, credentials: .none))
                configuration.auth.exec = ExecConfig(command: plugin.path, apiVersion: "client.authentication.k8s.io/v1")
                #expect(try await RESTBackend(configuration: configuration).nodes().count == 3)
            }
        }
    }
}
