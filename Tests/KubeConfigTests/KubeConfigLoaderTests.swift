import Findings
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KVerifyTestSupport
import KubeConfig
import Testing

/// A temp directory for kubeconfig files, removed at the end of `with`.
struct Scratch {
    let directory: URL

    static func with<T>(_ body: (Scratch) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(Scratch(directory: directory))
    }

    @discardableResult
    func write(_ name: String, _ text: String, executable: Bool = false) throws -> String {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        // open(O_CLOEXEC): tests spawn processes in parallel, and a child that inherited a write descriptor to a
        // script keeps it open past its exec, so running the script fails with "Text file busy".
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, executable ? 0o755 : 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw CocoaError(.fileWriteUnknown)
        }
        return url.path
    }

    func loader(kubeconfigEnv: String? = nil, extra: [String: String] = [:]) -> KubeConfigLoader {
        var environment = extra
        environment["KUBECONFIG"] = kubeconfigEnv
        return KubeConfigLoader(
            environment: environment, homeDirectory: directory.appendingPathComponent("home").path,
            serviceAccountDirectory: directory.appendingPathComponent("sa").path)
    }
}

/// Expects `body` to throw a `KubeConfigError` with `code`; returns it for message checks.
@discardableResult
func expectError(_ code: KubeConfigError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> KubeConfigError? {
    do {
        try body()
        Issue.record("expected \(code), nothing thrown", sourceLocation: sourceLocation)
    } catch let error as KubeConfigError {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected KubeConfigError \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

let basic = """
    apiVersion: v1
    kind: Config
    current-context: first
    clusters:
    - name: c1
      cluster: {server: "https://127.0.0.1:6443"}
    - name: shared
      cluster: {server: "https://from-a.example:6443"}
    users:
    - name: u1
      user: {token: "s3cret-token-a"}
    contexts:
    - name: first
      context: {cluster: c1, user: u1, namespace: obs}
    - name: to-shared
      context: {cluster: shared, user: u1}
    - name: dangling-cluster
      context: {cluster: nowhere, user: u1}
    - name: dangling-user
      context: {cluster: c1, user: ghost}
    """

@Suite("kubeconfig loading and merging")
struct KubeConfigLoaderTests {
    @Test("KUBECONFIG is a merged list: first file wins per name and for current-context, missing files skipped")
    func mergedList() async throws {
        try await Scratch.with { scratch in
            let a = try scratch.write("a.yaml", basic)
            let b = try scratch.write("b.yaml", """
                current-context: second
                clusters:
                - name: shared
                  cluster: {server: "https://from-b.example:6443"}
                - name: c2
                  cluster: {server: "https://10.0.0.2:6443"}
                users:
                - {name: u2, user: {username: admin, password: pw}}
                contexts:
                - {name: second, context: {cluster: c2, user: u2}}
                """)
            let missing = scratch.directory.appendingPathComponent("missing.yaml").path
            let loader = scratch.loader(kubeconfigEnv: "\(missing):\(a):\(b)")
            let current = try loader.load()
            #expect(current.contextName == "first")
            #expect(current.cluster.server == "https://127.0.0.1:6443")
            #expect(current.namespace == "obs")
            #expect(current.auth.token?.exposedString == "s3cret-token-a")
            #expect(current.sourceFiles == [a, b])
            #expect(current.cluster.insecureSkipTLSVerify == false)

            let shared = try loader.load(.init(context: "to-shared"))
            #expect(shared.cluster.server == "https://from-a.example:6443")
            #expect(shared.namespace == "default")

            let second = try loader.load(.init(context: "second", namespace: "override"))
            #expect(second.cluster.server == "https://10.0.0.2:6443")
            #expect(second.auth.username == "admin")
            #expect(second.auth.password?.exposedString == "pw")
            #expect(second.namespace == "override")
        }
    }

    @Test("the default is ~/.kube/config; --kubeconfig beats KUBECONFIG")
    func precedence() async throws {
        try await Scratch.with { scratch in
            try scratch.write("home/.kube/config", basic)
            #expect(try scratch.loader().load().contextName == "first")
            let other = try scratch.write("other.yaml", basic.replacingOccurrences(of: "current-context: first", with: "current-context: to-shared"))
            let fromFlag = try scratch.loader(kubeconfigEnv: scratch.directory.appendingPathComponent("home/.kube/config").path)
                .load(.init(kubeconfig: other))
            #expect(fromFlag.contextName == "to-shared")
        }
    }

    @Test("a context, cluster or user that is not defined is named in the error, with the known ones")
    func danglingReferences() async throws {
        try await Scratch.with { scratch in
            let path = try scratch.write("config", basic)
            let loader = scratch.loader(kubeconfigEnv: path)
            let context = expectError(.contextNotFound) { _ = try loader.load(.init(context: "nope")) }
            #expect(context?.message.contains("'nope'") == true)
            #expect(context?.message.contains("dangling-user, first, to-shared") == true)
            let cluster = expectError(.clusterNotFound) { _ = try loader.load(.init(context: "dangling-cluster")) }
            #expect(cluster?.message.contains("cluster 'nowhere'") == true)
            let user = expectError(.userNotFound) { _ = try loader.load(.init(context: "dangling-user")) }
            #expect(user?.message.contains("user 'ghost'") == true)
            #expect(user?.isCredentialFailure == false)
        }
    }

    @Test("no file, no KUBECONFIG, no service account → noConfiguration; --kubeconfig to a missing file → fileUnreadable")
    func nothing() async throws {
        try await Scratch.with { scratch in
            expectError(.noConfiguration) { _ = try scratch.loader().load() }
            let error = expectError(.fileUnreadable) { _ = try scratch.loader().load(.init(kubeconfig: "/nonexistent/kc")) }
            #expect(error?.message.contains("/nonexistent/kc") == true)
            // A directory is named as one (it was "NSCocoaErrorDomain 256"), and is unreadable input too.
            let directory = FileManager.default.temporaryDirectory.path
            let notFile = expectError(.fileUnreadable) { _ = try scratch.loader().load(.init(kubeconfig: directory)) }
            #expect(notFile?.message == "kubeconfig \(directory) is a directory", "\(notFile?.message ?? "")")
        }
    }

    @Test("malformed YAML names file, line and column — and does not quote the line, which may hold a token")
    func malformed() async throws {
        try await Scratch.with { scratch in
            let path = try scratch.write("bad", "clusters:\n- name: c\n  cluster: {server: x\nusers:\n- name: u\n  user: {token: \"leaky-token\n")
            let error = expectError(.malformed) { _ = try scratch.loader(kubeconfigEnv: path).load() }
            let message = try #require(error?.message)
            #expect(message.contains(path))
            #expect(message.contains("line "))
            #expect(!message.contains("leaky-token"))
        }
    }

    /// A third adversarial pass saw these without a line, and "users[0].user.token: REDACTED Scalar": the redaction
    /// took the word after "token:" for a secret.
    @Test("a field of the wrong type names its path, line and column, what was expected and what was found; a secret field's name stays readable",
          arguments: [
              ("clusters:\n- name: c\n  cluster:\n    insecure-skip-tls-verify: [1]\n",
               "expected a scalar at clusters[0].cluster.insecure-skip-tls-verify (line 4, column 31), found a sequence"),
              ("users:\n- name: u\n  user: {token: [1, 2]}\n", "expected a scalar at users[0].user.token (line 3, column 17), found a sequence"),
              ("clusters: 5\n", "expected a sequence at clusters (line 1, column 11), found a scalar"),
          ])
    func wrongType(yaml: String, message: String) async throws {
        try await Scratch.with { scratch in
            let path = try scratch.write("bad", yaml)
            let error = expectError(.malformed) { _ = try scratch.loader(kubeconfigEnv: path).load() }
            #expect(error?.message.hasSuffix("is not a valid kubeconfig: \(message)") == true, "\(error?.message ?? "")")
            #expect(Redaction.redact(error?.message ?? "") == error?.message, "nothing in it looks like a secret")
        }
    }

    @Test("a server that is not a URL is refused up front")
    func badServer() async throws {
        try await Scratch.with { scratch in
            let path = try scratch.write("c", "current-context: x\nclusters: [{name: c, cluster: {server: 'localhost:6443'}}]\ncontexts: [{name: x, context: {cluster: c}}]\n")
            let error = expectError(.malformed) { _ = try scratch.loader(kubeconfigEnv: path).load() }
            #expect(error?.message.contains("cluster 'c'") == true)
        }
    }
}

@Suite("kubeconfig clusters and TLS material")
struct KubeConfigTLSTests {
    static func config(cluster: String, user: String) -> String {
        "current-context: x\nclusters:\n- name: c\n  cluster:\n\(cluster)\nusers:\n- name: u\n  user:\n\(user)\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
    }

    @Test("CA data wins over the CA file; relative paths are relative to the kubeconfig; TLS options carried")
    func certificateAuthority() async throws {
        try await TestCertificates.with { pki in
            try await Scratch.with { scratch in
                let otherCA = try String(contentsOf: pki.otherCACertificate, encoding: .utf8)
                try scratch.write("sub/ca-from-file.crt", otherCA)
                let path = try scratch.write("sub/config", Self.config(
                    cluster: "    server: https://127.0.0.1:1\n    certificate-authority: ca-from-file.crt\n    certificate-authority-data: \(try pki.base64(pki.caCertificate))\n    tls-server-name: kube.test\n    proxy-url: http://proxy.local:3128",
                    user: "    client-certificate: \(pki.clientCertificate.path)\n    client-key-data: \(try pki.base64(pki.clientKey))"))
                let configuration = try scratch.loader(kubeconfigEnv: path).load()
                #expect(configuration.cluster.certificateAuthorityPEM == (try pki.data(pki.caCertificate)))
                #expect(configuration.cluster.tlsServerName == "kube.test")
                #expect(configuration.cluster.proxyURL == "http://proxy.local:3128")
                #expect(configuration.auth.clientCertificatePEM == (try pki.data(pki.clientCertificate)))
                #expect(configuration.auth.clientKeyPEM?.exposed == (try pki.data(pki.clientKey)))
                #expect(configuration.auth.kinds == ["client certificate"])

                _ = try scratch.write("sub/token", "t0ken\n")
                let fileOnly = try scratch.write("sub/config2", Self.config(
                    cluster: "    server: https://127.0.0.1:1\n    certificate-authority: ca-from-file.crt",
                    user: "    tokenFile: token"))
                let second = try scratch.loader(kubeconfigEnv: fileOnly).load()
                #expect(second.cluster.certificateAuthorityPEM == Array(otherCA.utf8))
                #expect(second.auth.tokenFile == scratch.directory.appendingPathComponent("sub/token").standardizedFileURL.path)
            }
        }
    }

    struct BadMaterial: Sendable, CustomTestStringConvertible {
        var cluster: String
        var user: String
        var code: KubeConfigError.Code
        var mentions: String
        var testDescription: String { "\(code) mentions \(mentions)" }
    }

    @Test(arguments: [
        BadMaterial(cluster: "    certificate-authority-data: '%%%not-base64'", user: "    token: t", code: .badBase64,
                    mentions: "certificate-authority-data of cluster 'c'"),
        BadMaterial(cluster: "    certificate-authority-data: \(Data("hello".utf8).base64EncodedString())", user: "    token: t",
                    code: .badPEM, mentions: "certificate-authority of cluster 'c'"),
        BadMaterial(cluster: "    certificate-authority: /nonexistent/ca.crt", user: "    token: t", code: .fileUnreadable,
                    mentions: "/nonexistent/ca.crt"),
        // Issue #18: a missing tokenFile is unreadable input (exit 2) like a missing certificate file, not exit 3.
        BadMaterial(cluster: "", user: "    tokenFile: /nonexistent/token", code: .fileUnreadable,
                    mentions: "tokenFile of user 'u'"),
        BadMaterial(cluster: "", user: "    client-key-data: \(Data("-----BEGIN PRIVATE KEY-----\nxx".utf8).base64EncodedString())",
                    code: .malformed, mentions: "no client-certificate"),
    ])
    func badMaterial(_ bad: BadMaterial) async throws {
        try await Scratch.with { scratch in
            let clusterBlock = "    server: https://127.0.0.1:1" + (bad.cluster.isEmpty ? "" : "\n" + bad.cluster)
            let path = try scratch.write("config", Self.config(cluster: clusterBlock, user: bad.user))
            let error = expectError(bad.code) { _ = try scratch.loader(kubeconfigEnv: path).load() }
            #expect(error?.message.contains(bad.mentions) == true, "\(error?.message ?? "")")
        }
    }

    @Test("insecure-skip-tls-verify with a CA is refused with kubectl's reason (exit 2), not verification silently off",
          arguments: ["certificate-authority-data", "certificate-authority"])
    func insecureWithCA(field: String) async throws {
        try await TestCertificates.with { pki in
            try await Scratch.with { scratch in
                let value = field == "certificate-authority" ? pki.caCertificate.path : try pki.base64(pki.caCertificate)
                let path = try scratch.write("config", Self.config(
                    cluster: "    server: https://127.0.0.1:1\n    \(field): \(value)\n    insecure-skip-tls-verify: true",
                    user: "    token: t"))
                let error = expectError(.malformed) { _ = try scratch.loader(kubeconfigEnv: path).load() }
                #expect(error?.message.contains("specifying a root certificates file with the insecure flag is not allowed") == true,
                        "\(error?.message ?? "")")
                #expect(error?.isCredentialFailure == false)
            }
        }
    }

    @Test("an expired client certificate is reported with its end date before any connection (exit 3)")
    func expiredCertificate() async throws {
        try await TestCertificates.with { pki in
            try await Scratch.with { scratch in
                let path = try scratch.write("config", Self.config(
                    cluster: "    server: https://127.0.0.1:1",
                    user: "    client-certificate-data: \(try pki.base64(try pki.expiredClientCertificate))\n    client-key-data: \(try pki.base64(pki.clientKey))"))
                let error = expectError(.certificateExpired) { _ = try scratch.loader(kubeconfigEnv: path).load() }
                #expect(error?.message.contains("expired at") == true)
                #expect(error?.isCredentialFailure == true)
            }
        }
    }

    @Test("a key that is not PEM is refused without quoting it")
    func badKey() async throws {
        try await TestCertificates.with { pki in
            try await Scratch.with { scratch in
                let path = try scratch.write("config", Self.config(
                    cluster: "    server: https://127.0.0.1:1",
                    user: "    client-certificate-data: \(try pki.base64(pki.clientCertificate))\n    client-key-data: \(Data("private-garbage".utf8).base64EncodedString())"))
                let error = expectError(.badPEM) { _ = try scratch.loader(kubeconfigEnv: path).load() }
                #expect(error?.message.contains("private-garbage") == false)
            }
        }
    }

    @Test("in a pod: service account token, CA and namespace")
    func inCluster() async throws {
        try await TestCertificates.with { pki in
            try await Scratch.with { scratch in
                try scratch.write("sa/token", "sa-token\n")
                try scratch.write("sa/ca.crt", try String(contentsOf: pki.caCertificate, encoding: .utf8))
                try scratch.write("sa/namespace", "monitoring")
                let loader = scratch.loader(extra: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"])
                let configuration = try loader.load()
                #expect(configuration.isInCluster)
                #expect(configuration.cluster.server == "https://10.96.0.1:443")
                #expect(configuration.namespace == "monitoring")
                #expect(configuration.cluster.certificateAuthorityPEM == (try pki.data(pki.caCertificate)))
                let credential = try await CredentialProvider(configuration).current()
                #expect(credential.bearerToken?.exposedString == "sa-token")
            }
        }
    }
}
