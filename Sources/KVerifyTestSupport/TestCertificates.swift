import Foundation
import Processes

/// A throwaway PKI made by the real `openssl` at test time: a CA, a server certificate for 127.0.0.1/localhost
/// and a client certificate, both signed by that CA, plus an unrelated CA for "wrong CA" tests.
/// Files live in a temporary directory removed by `remove()`.
public struct TestCertificates: Sendable {
    public let directory: URL

    public var caCertificate: URL { directory.appendingPathComponent("ca.crt") }
    public var serverCertificate: URL { directory.appendingPathComponent("server.crt") }
    public var serverKey: URL { directory.appendingPathComponent("server.key") }
    public var clientCertificate: URL { directory.appendingPathComponent("client.crt") }
    public var clientKey: URL { directory.appendingPathComponent("client.key") }
    public var otherCACertificate: URL { directory.appendingPathComponent("other-ca.crt") }

    /// openssl runs on a thread of its own, not on one of the cooperative threads the tests' sims share.
    public static func generate(clientCommonName: String = "kverify-test", clientOrganization: String = "system:masters") async throws -> TestCertificates {
        try await runBlocking { try generateBlocking(clientCommonName: clientCommonName, clientOrganization: clientOrganization) }
    }

    private static func generateBlocking(clientCommonName: String, clientOrganization: String) throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-pki-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let days = "2"
        try certificates.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                                  "-days", days, "-subj", "/CN=kverify-test-ca"])
        try certificates.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "other-ca.key",
                                  "-out", "other-ca.crt", "-days", days, "-subj", "/CN=kverify-other-ca"])
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
            .write(to: directory.appendingPathComponent("server.ext"), atomically: false, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(to: directory.appendingPathComponent("client.ext"), atomically: false, encoding: .utf8)
        for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/O=\(clientOrganization)/CN=\(clientCommonName)")] {
            try certificates.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr",
                                      "-subj", subject])
            try certificates.openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                                      "-CAcreateserial", "-out", "\(name).crt", "-days", days, "-extfile", "\(name).ext"])
        }
        return certificates
    }

    public func data(_ file: URL) throws -> [UInt8] { Array(try Data(contentsOf: file)) }

    public func remove() { try? FileManager.default.removeItem(at: directory) }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError("openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self))")
        }
    }
}

/// `scripts/testing/http_test_server.py`: a real HTTP or HTTPS server with canned routes for client tests.
public final class HTTPTestServer: Sendable {
    public let port: Int
    public let scheme: String
    private let process: ChildProcess

    /// - Parameters:
    ///   - certificates: serve TLS with the server certificate.
    ///   - requireClientCertificate: demand a client certificate signed by the test CA.
    public init(certificates: TestCertificates? = nil, requireClientCertificate: Bool = false) async throws {
        // The server binds port 0 and says which port it got: a port chosen here and bound there a moment later
        // could be taken in between by whatever else the parallel suites start.
        var arguments = [RepositoryPaths.root.appendingPathComponent("scripts/testing/http_test_server.py").path, "--port", "0"]
        if let certificates {
            arguments += ["--cert", certificates.serverCertificate.path, "--key", certificates.serverKey.path]
            if requireClientCertificate { arguments += ["--client-ca", certificates.caCertificate.path] }
        }
        scheme = certificates == nil ? "http" : "https"
        process = try ChildProcess(name: "http-test-server", executable: URL(fileURLWithPath: "/usr/bin/env"),
                                   arguments: ["python3"] + arguments)
        do {
            try await process.waitForLog(containing: "listening on 127.0.0.1:")
            let line = process.logTail(lines: 10_000).split(separator: "\n").first { $0.hasPrefix("listening on 127.0.0.1:") }
            guard let line, let port = Int(line.dropFirst("listening on 127.0.0.1:".count)) else {
                throw FixtureError("http-test-server did not say which port it listens on:\n\(process.logTail())")
            }
            self.port = port
        } catch {
            process.stop()
            throw error
        }
    }

    public func url(_ path: String) -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }
    public func stop() { process.stop() }
}
