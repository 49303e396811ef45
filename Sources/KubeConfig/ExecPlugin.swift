import Foundation
import Processes

/// Runs a kubeconfig `exec` credential plugin as client-go does: config `env` merged over the inherited
/// environment, `KUBERNETES_EXEC_INFO` describing the request, stdout read to EOF, exit status checked, and
/// the `ExecCredential` on stdout decoded. Plugin output is never quoted in errors: it may hold a token.
enum ExecPlugin {
    struct ExecCredential: Decodable {
        struct Status: Decodable {
            var token: String?
            var clientCertificateData: String?
            var clientKeyData: String?
            var expirationTimestamp: String?
        }
        var apiVersion: String?
        var kind: String?
        var status: Status?
    }

    static func run(
        _ exec: ExecConfig, cluster: ClusterEndpoint, environment base: [String: String], timeout: Duration, now: Date
    ) async throws -> Credential {
        let apiVersion = exec.apiVersion ?? "client.authentication.k8s.io/v1"
        var environment = base
        for variable in exec.env ?? [] { environment[variable.name] = variable.value }
        environment["KUBERNETES_EXEC_INFO"] = execInfo(apiVersion: apiVersion, cluster: exec.provideClusterInfo == true ? cluster : nil)
        let name = "exec plugin '\(exec.command)'"

        let result: ProcessRunner.Result
        do {
            result = try await ProcessRunner.run(
                exec.command, arguments: exec.args ?? [], environment: environment, timeout: timeout, maxOutputBytes: 1 << 20)
        } catch {
            let hint = exec.installHint.map { "; \($0)" } ?? ""
            throw KubeConfigError(.execFailed, "\(name) could not be started: \(error)\(hint)")
        }
        if result.timedOut {
            throw KubeConfigError(
                .execFailed,
                "\(name) did not finish within \(timeout) and was killed (it may be waiting for interactive input, which kverify cannot give)")
        }
        guard result.succeeded else {
            let how = result.signal.map { "was killed by signal \($0)" } ?? "exited with status \(result.exitCode)"
            let excerpt = result.stderrExcerpt()
            throw KubeConfigError(.execFailed, "\(name) \(how)" + (excerpt.isEmpty ? "" : "; stderr: \(excerpt)"))
        }
        let credential: ExecCredential
        do {
            credential = try JSONDecoder().decode(ExecCredential.self, from: Data(result.stdout))
        } catch {
            throw KubeConfigError(
                .execOutputInvalid,
                "\(name) printed \(result.stdout.count) bytes that are not an ExecCredential JSON object (\(YAMLLocation.describe(error)))")
        }
        guard credential.kind == nil || credential.kind == "ExecCredential" else {
            throw KubeConfigError(.execOutputInvalid, "\(name) printed a '\(credential.kind ?? "")', expected kind ExecCredential")
        }
        if let returned = credential.apiVersion, returned != apiVersion {
            throw KubeConfigError(.execOutputInvalid, "\(name) answered with apiVersion \(returned), expected \(apiVersion)")
        }
        guard let status = credential.status else {
            throw KubeConfigError(.execOutputInvalid, "\(name) printed an ExecCredential without status")
        }
        var expiresAt: Date?
        if let text = status.expirationTimestamp {
            guard let date = parseTimestamp(text) else {
                throw KubeConfigError(.execOutputInvalid, "\(name): expirationTimestamp '\(text)' is not an RFC 3339 time")
            }
            expiresAt = date
        }
        if let token = status.token, !token.isEmpty {
            return Credential(bearerToken: Secret(token), expiresAt: expiresAt)
        }
        if let certificate = status.clientCertificateData, let key = status.clientKeyData {
            // In ExecCredential these are PEM text, not base64 (unlike kubeconfig's *-data fields).
            let certificateBytes = Array(certificate.utf8)
            try PEM.requireCertificate(certificateBytes, what: "client certificate from \(name)")
            try PEM.requirePrivateKey(Array(key.utf8), what: "client key from \(name)")
            return Credential(clientCertificatePEM: certificateBytes, clientKeyPEM: Secret(key), expiresAt: expiresAt)
        }
        throw KubeConfigError(
            .execOutputInvalid, "\(name) printed an ExecCredential with neither status.token nor clientCertificateData+clientKeyData")
    }

    /// `KUBERNETES_EXEC_INFO`: an ExecCredential with only its spec filled in.
    static func execInfo(apiVersion: String, cluster: ClusterEndpoint?) -> String {
        var spec: [String: Any] = ["interactive": false]
        if let cluster {
            var info: [String: Any] = ["server": cluster.server, "insecure-skip-tls-verify": cluster.insecureSkipTLSVerify]
            if let ca = cluster.certificateAuthorityPEM { info["certificate-authority-data"] = Data(ca).base64EncodedString() }
            if let name = cluster.tlsServerName { info["tls-server-name"] = name }
            if let proxy = cluster.proxyURL { info["proxy-url"] = proxy }
            spec["cluster"] = info
        }
        let object: [String: Any] = ["apiVersion": apiVersion, "kind": "ExecCredential", "spec": spec]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func parseTimestamp(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
