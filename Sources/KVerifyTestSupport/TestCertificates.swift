import Foundation

/// A throwaway PKI made with the real `openssl` at test time in a temp directory: a CA, a server certificate
/// for 127.0.0.1/localhost, a client certificate, an expired client certificate and an unrelated second CA.
/// `remove()` deletes the directory; `with {}` does so also when the body throws.
public struct TestCertificates: Sendable {
    public let directory: URL

    public var caCertificate: URL { directory.appendingPathComponent("ca.crt") }
    public var serverCertificate: URL { directory.appendingPathComponent("server.crt") }
    public var serverKey: URL { directory.appendingPathComponent("server.key") }
    public var clientCertificate: URL { directory.appendingPathComponent("client.crt") }
    public var clientKey: URL { directory.appendingPathComponent("client.key") }
    public var expiredClientCertificate: URL { directory.appendingPathComponent("expired.crt") }
    /// A CA that signed nothing here: trusting it instead of `ca.crt` must fail verification.
    public var otherCACertificate: URL { directory.appendingPathComponent("other-ca.crt") }

    /// The client certificate's subject CN, which the test server echoes as the user name.
    public static let clientCommonName = "kverify-test"

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-pki-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            try generate()
        } catch {
            remove()
            throw error
        }
    }

    public func remove() { try? FileManager.default.removeItem(at: directory) }

    public static func with<T>(_ body: (TestCertificates) async throws -> T) async throws -> T {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        return try await body(certificates)
    }

    public func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    /// base64 of a file, as kubeconfig `*-data` fields hold it.
    public func base64(_ url: URL) throws -> String { try Data(contentsOf: url).base64EncodedString() }

    private func generate() throws {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=kverify-test-ca"])
        try openssl(["req", "-x509"] + ec + ["-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=other-ca"])
        try write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kube.test\nextendedKeyUsage=serverAuth\n")
        try write("client.ext", "extendedKeyUsage=clientAuth\n")
        try openssl(["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver"])
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "server.crt", "-days", "2", "-extfile", "server.ext"])
        try openssl(["req"] + ec + ["-keyout", "client.key", "-out", "client.csr", "-subj", "/O=system:masters/CN=\(Self.clientCommonName)"])
        try openssl(["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "client.crt", "-days", "2", "-extfile", "client.ext"])
        // `-days -1` puts notAfter a day in the past.
        try openssl(["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "expired.crt", "-days", "-1", "-extfile", "client.ext"])
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = try RedisServerFixture.which("openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(String(decoding: stderr, as: UTF8.self))")
        }
    }
}
