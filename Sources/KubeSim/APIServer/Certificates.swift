import Foundation
import SimFaults
import SimStore

/// The sim's PKI, generated at start by `/usr/bin/openssl` and kept in memory: a CA, a server certificate for
/// `127.0.0.1`/`localhost` and a client certificate in `system:masters` (as kind's admin user). Private keys only
/// ever travel through pipes; the one file written is the public CA certificate that `openssl req -CA` needs.
public struct SimCertificates: Sendable {
    public var caCertificatePEM: Data
    public var serverCertificatePEM: Data
    public var serverKeyPEM: Data
    public var clientCertificatePEM: Data
    public var clientKeyPEM: Data

    /// Generates a fresh CA, server and client pair.
    /// - Parameter scratch: a private directory for the (public) CA certificate and openssl's config.
    /// - Throws: `SimError` naming the openssl step that failed and its stderr.
    /// - Parameter serviceIP: the `kubernetes` Service's ClusterIP, named in the server certificate with its DNS names.
    public static func generate(in scratch: URL, serviceIP: String? = nil, openssl: String = "/usr/bin/openssl") throws -> SimCertificates {
        let config = scratch.appendingPathComponent("openssl.cnf")
        try Data("[req]\ndistinguished_name=dn\nprompt=no\n[dn]\n".utf8).write(to: config)
        let common = ["req", "-config", config.path, "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", "/dev/stdout", "-out", "/dev/stdout"]

        let ca = try run(openssl, common + [
            "-subj", "/CN=kverify-sim-ca", "-days", "3650",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ], input: nil, step: "CA certificate")
        let (caCert, caKey) = try split(ca, step: "CA certificate")
        let caFile = scratch.appendingPathComponent("ca.crt")
        try caCert.write(to: caFile)

        func leaf(_ subject: String, _ extensions: [String], step: String) throws -> (Data, Data) {
            var arguments = common + ["-subj", subject, "-days", "365", "-CA", caFile.path, "-CAkey", "/dev/stdin",
                                      "-addext", "basicConstraints=critical,CA:FALSE"]
            for item in extensions { arguments += ["-addext", item] }
            return try split(try run(openssl, arguments, input: caKey, step: step), step: step)
        }
        let serviceNames = serviceIP.map { ",IP:\($0),DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" } ?? ""
        let server = try leaf("/CN=kube-apiserver", [
            "subjectAltName=IP:127.0.0.1,DNS:localhost" + serviceNames, "extendedKeyUsage=serverAuth",
            "keyUsage=critical,digitalSignature,keyEncipherment",
        ], step: "server certificate")
        let client = try leaf("/O=system:masters/CN=kubernetes-admin", [
            "extendedKeyUsage=clientAuth", "keyUsage=critical,digitalSignature,keyEncipherment",
        ], step: "client certificate")
        return SimCertificates(
            caCertificatePEM: caCert, serverCertificatePEM: server.0, serverKeyPEM: server.1,
            clientCertificatePEM: client.0, clientKeyPEM: client.1)
    }

    /// Splits openssl's combined output into (certificate, private key) PEM blocks.
    static func split(_ output: Data, step: String) throws -> (Data, Data) {
        let text = String(decoding: output, as: UTF8.self)
        func block(_ label: String) -> Data? {
            guard let start = text.range(of: "-----BEGIN \(label)-----"),
                  let end = text.range(of: "-----END \(label)-----", range: start.upperBound..<text.endIndex)
            else { return nil }
            return Data((text[start.lowerBound..<end.upperBound] + "\n").utf8)
        }
        guard let certificate = block("CERTIFICATE"), let key = block("PRIVATE KEY") else {
            throw SimError("openssl (\(step)): expected a CERTIFICATE and a PRIVATE KEY block, got \(output.count) bytes without them")
        }
        return (certificate, key)
    }

    /// Runs openssl with a deadline; stdin carries the CA key when signing, so no key touches the disk.
    static func run(_ executable: String, _ arguments: [String], input: Data?, step: String) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe(), stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        do { try process.run() } catch {
            throw SimError("cannot run \(executable) for the \(step): \(error); install openssl (scripts/bootstrap.sh)")
        }
        if let input { stdin.fileHandleForWriting.write(input) }
        try? stdin.fileHandleForWriting.close()
        // Both pipes are small (a few KiB), so reading them one after the other cannot deadlock.
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw SimError("openssl failed creating the \(step) (exit \(process.terminationStatus)): \(message)")
        }
        return output
    }
}

