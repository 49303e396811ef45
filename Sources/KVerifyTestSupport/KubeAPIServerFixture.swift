import Foundation

/// `scripts/testing/kube_api_server.py`: a fake Kubernetes API server over real HTTPS (certificates from
/// `TestCertificates`), good enough for kverify's two backends and for the real kubectl. Faults are injected
/// through a plain-HTTP control port. `stop()` kills it; `with {}` also on failure.
public final class KubeAPIServerFixture: Sendable {
    /// Whether a TLS handshake without a client certificate fails (`required`) or falls back to token auth.
    public enum ClientAuth: String, Sendable { case required, optional }

    public let port: Int
    public let controlPort: Int
    public let certificates: TestCertificates
    /// The bearer token the server accepts (only with `.optional` client auth).
    public let token: String?
    private let process: ChildProcess

    public init(
        certificates: TestCertificates, clientAuth: ClientAuth = .required, token: String? = nil,
        nodes: Int = 3, notReady: Int = 0, deny: [String] = []
    ) async throws {
        port = try TCPProbe.freePort()
        controlPort = try TCPProbe.freePort()
        self.certificates = certificates
        self.token = token
        var arguments = [
            RepositoryPaths.root.appendingPathComponent("scripts/testing/kube_api_server.py").path,
            "--port", "\(port)", "--control-port", "\(controlPort)",
            "--cert", certificates.serverCertificate.path, "--key", certificates.serverKey.path,
            "--client-ca", certificates.caCertificate.path, "--client-auth", clientAuth.rawValue,
            "--nodes", "\(nodes)", "--not-ready", "\(notReady)",
        ]
        if let token { arguments += ["--token", token] }
        for resource in deny { arguments += ["--deny", resource] }
        process = try ChildProcess(
            name: "kube-api-server", executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3"] + arguments)
        do {
            try await process.waitForPort(port)
            try await process.waitForPort(controlPort)
        } catch {
            process.stop()
            throw error
        }
    }

    public var server: String { "https://127.0.0.1:\(port)" }
    public func stop() { process.stop() }
    public var log: String { process.logTail(lines: 50) }

    public static func with<T>(
        clientAuth: ClientAuth = .required, token: String? = nil, nodes: Int = 3, notReady: Int = 0, deny: [String] = [],
        _ body: (KubeAPIServerFixture) async throws -> T
    ) async throws -> T {
        try await TestCertificates.with { certificates in
            let server = try await KubeAPIServerFixture(
                certificates: certificates, clientAuth: clientAuth, token: token, nodes: nodes, notReady: notReady, deny: deny)
            defer { server.stop() }
            return try await body(server)
        }
    }

    /// How the kubeconfig written by `writeKubeconfig` authenticates and trusts.
    public enum Credentials: Sendable {
        case clientCertificate
        case token(String)
        case none
    }

    /// Writes a kubeconfig (context `test`, namespace `obs`) for this server and returns its path.
    /// - Parameters:
    ///   - trustOtherCA: trust an unrelated CA instead of the one that signed the server (TLS must fail).
    public func writeKubeconfig(
        to directory: URL, credentials: Credentials = .clientCertificate, trustOtherCA: Bool = false,
        server overrideServer: String? = nil
    ) throws -> String {
        let ca = try certificates.base64(trustOtherCA ? certificates.otherCACertificate : certificates.caCertificate)
        var user: String
        switch credentials {
        case .clientCertificate:
            user = "    client-certificate-data: \(try certificates.base64(certificates.clientCertificate))\n"
                + "    client-key-data: \(try certificates.base64(certificates.clientKey))\n"
        case .token(let token):
            user = "    token: \(token)\n"
        case .none:
            user = "    {}\n"
        }
        let text = """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters:
            - name: test
              cluster:
                server: \(overrideServer ?? server)
                certificate-authority-data: \(ca)
            users:
            - name: test
              user:
            \(user)contexts:
            - name: test
              context: {cluster: test, user: test, namespace: obs}

            """
        let url = directory.appendingPathComponent("kubeconfig-\(UUID().uuidString.prefix(6))")
        try text.write(to: url, atomically: false, encoding: .utf8)
        return url.path
    }

    /// Injects a fault: `fault(kind: "retry429", path: "/api/v1/nodes", count: 2, ["retry_after": "1"])`.
    public func fault(kind: String, path: String, count: Int = -1, method: String? = nil, _ extra: [String: String] = [:]) throws {
        var query = ["kind": kind, "path": path, "count": "\(count)"].merging(extra) { $1 }
        if let method { query["method"] = method }
        let encoded = query.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }
            .joined(separator: "&")
        _ = try control("/fault?\(encoded)")
    }

    /// Every request the API port served (method, path, auth kind, time), oldest first.
    public func requests() throws -> [[String: Any]] {
        let body = try control("/requests")
        return (try JSONSerialization.jsonObject(with: body) as? [[String: Any]]) ?? []
    }

    /// Clears faults and the request log.
    public func reset() throws { _ = try control("/reset") }

    /// Modifies an object so watchers get a MODIFIED event.
    public func touch(plural: String, namespace: String?, name: String) throws {
        var path = "/change?plural=\(plural)&name=\(name)"
        if let namespace { path += "&namespace=\(namespace)" }
        _ = try control(path)
    }

    /// One HTTP/1.0 GET to the control port; returns the body.
    private func control(_ path: String) throws -> Data {
        let response: [UInt8]
        do {
            response = try TCPExchange.run(port: controlPort, send: Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8), receiveTimeoutSeconds: 10)
        } catch {
            throw FixtureError("kube-api-server control port: \(error); \(log)")
        }
        guard let split = response.indices.first(where: { response[$0...].starts(with: [13, 10, 13, 10]) }) else {
            throw FixtureError("kube-api-server control \(path): no HTTP response")
        }
        return Data(response[(split + 4)...])
    }
}
