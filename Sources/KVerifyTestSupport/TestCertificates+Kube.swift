import Foundation

extension TestCertificates {
    /// Generates a PKI, runs `body`, and removes the files afterwards, also when `body` throws.
    public static func with<T>(_ body: (TestCertificates) async throws -> T) async throws -> T {
        let certificates = try await generate()
        defer { certificates.remove() }
        return try await body(certificates)
    }

    /// base64 of a file, as kubeconfig `*-data` fields hold it.
    public func base64(_ url: URL) throws -> String { try Data(contentsOf: url).base64EncodedString() }

    /// A client certificate for the client key, signed by the test CA, whose `notAfter` lies a day in the
    /// past (`openssl x509 -days -1`). Made on first use.
    public var expiredClientCertificate: URL {
        get throws {
            let url = directory.appendingPathComponent("expired.crt")
            if FileManager.default.fileExists(atPath: url.path) { return url }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                                 "-out", "expired.crt", "-days", "-1", "-extfile", "client.ext"]
            process.currentDirectoryURL = directory
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw FixtureError("openssl could not make an expired certificate") }
            return url
        }
    }
}
