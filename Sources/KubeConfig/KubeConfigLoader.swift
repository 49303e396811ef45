import Foundation
import YAMLInput
import Yams

/// Finds, merges and resolves kubeconfig files the way kubectl does.
///
/// Precedence: `--kubeconfig` (one file, must exist) › `KUBECONFIG` (a `:`-separated list; missing files are
/// skipped; for each cluster/user/context name the first file that defines it wins, and `current-context` comes
/// from the first file that sets one) › `~/.kube/config` › the pod's service account.
/// Relative paths inside a file (`certificate-authority`, `client-key`, `tokenFile`) are relative to that file.
public struct KubeConfigLoader: Sendable {
    /// What the user asked for on the command line.
    public struct Options: Sendable, Hashable {
        public var kubeconfig: String?
        public var context: String?
        public var namespace: String?

        public init(kubeconfig: String? = nil, context: String? = nil, namespace: String? = nil) {
            self.kubeconfig = kubeconfig
            self.context = context
            self.namespace = namespace
        }
    }

    public var environment: [String: String]
    public var homeDirectory: String
    /// Where a pod's service account is mounted; overridable for tests.
    public var serviceAccountDirectory: String

    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        homeDirectory: String = NSHomeDirectory(),
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) {
        self.environment = environment
        self.homeDirectory = homeDirectory
        self.serviceAccountDirectory = serviceAccountDirectory
    }

    /// Resolves the context the options select.
    /// - Throws: `KubeConfigError` naming the file, context, cluster or user at fault.
    public func load(_ options: Options = Options()) throws -> KubeConfiguration {
        let files = try candidateFiles(options)
        if files.isEmpty {
            if let inCluster = try inClusterConfiguration(namespace: options.namespace) { return inCluster }
            throw KubeConfigError(
                .noConfiguration,
                "no kubeconfig: --kubeconfig not given, KUBECONFIG unset or naming no existing file, "
                    + "\(homeDirectory)/.kube/config missing, and not running in a pod; "
                    + "pass --kubeconfig or create a cluster (e.g. kind create cluster)")
        }
        let merged = try Merged(files: files.map(Self.parse))
        return try merged.resolve(options: options, sourceFiles: files)
    }

    /// The files to merge, in precedence order.
    func candidateFiles(_ options: Options) throws -> [String] {
        if let explicit = options.kubeconfig {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw KubeConfigError(.fileUnreadable, "kubeconfig \(explicit) (from --kubeconfig) does not exist")
            }
            return [explicit]
        }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            var seen = Set<String>()
            // kubectl skips entries that do not exist and de-duplicates the rest.
            return list.split(separator: ":").map(String.init)
                .filter { !$0.isEmpty && FileManager.default.fileExists(atPath: $0) && seen.insert($0).inserted }
        }
        let home = homeDirectory + "/.kube/config"
        return FileManager.default.fileExists(atPath: home) ? [home] : []
    }

    static func parse(_ path: String) throws -> (path: String, file: KubeConfigFile) {
        let bytes: [UInt8]
        do {
            bytes = try InputFile.read(path)
        } catch {
            throw KubeConfigError(.fileUnreadable, "kubeconfig \(path) \(error.reason)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw KubeConfigError(.malformed, "kubeconfig \(path) is not UTF-8 text")
        }
        do {
            try YAMLBudget.check(text)
        } catch {
            throw KubeConfigError(.malformed, "kubeconfig \(path) is refused: \(error)")
        }
        do {
            // An empty file is a valid, empty kubeconfig (kubectl treats it so).
            guard !text.allSatisfy(\.isWhitespace) else { return (path, KubeConfigFile()) }
            return (path, try YAMLDecoder().decode(KubeConfigFile.self, from: text))
        } catch {
            throw KubeConfigError(.malformed, "kubeconfig \(path) is not a valid kubeconfig: \(YAMLLocation.describe(error, source: text))")
        }
    }

    /// A pod's service account: `KUBERNETES_SERVICE_HOST/PORT` plus the mounted token, CA and namespace.
    func inClusterConfiguration(namespace override: String?) throws -> KubeConfiguration? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"],
            !host.isEmpty, !port.isEmpty
        else { return nil }
        let tokenPath = serviceAccountDirectory + "/token"
        guard FileManager.default.fileExists(atPath: tokenPath) else { return nil }
        var auth = AuthConfig()
        auth.tokenFile = tokenPath
        let caPath = serviceAccountDirectory + "/ca.crt"
        let ca = FileManager.default.fileExists(atPath: caPath) ? try readFile(caPath, role: "service account CA") : nil
        if let ca { try PEM.requireCertificate(ca, what: "service account CA \(caPath)") }
        let namespaceFile = (try? String(contentsOfFile: serviceAccountDirectory + "/namespace", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // An IPv6 service host needs brackets in a URL.
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return KubeConfiguration(
            contextName: "in-cluster", clusterName: "in-cluster", userName: "service-account",
            cluster: ClusterEndpoint(server: "https://\(hostPart):\(port)", certificateAuthorityPEM: ca),
            auth: auth, namespace: override ?? namespaceFile.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            isInCluster: true)
    }
}

func readFile(_ path: String, role: String) throws -> [UInt8] {
    do {
        return try InputFile.read(path)
    } catch {
        throw KubeConfigError(.fileUnreadable, "\(role) file \(path) \(error.reason)")
    }
}

/// The union of several kubeconfig files, first definition of each name winning.
struct Merged {
    struct Entry<Value> {
        var value: Value
        /// The defining file, for messages and for resolving relative paths.
        var file: String
    }

    var currentContext: Entry<String>?
    var clusters: [String: Entry<KubeConfigFile.Cluster>] = [:]
    var users: [String: Entry<KubeConfigFile.User>] = [:]
    var contexts: [String: Entry<KubeConfigFile.Context>] = [:]

    init(files: [(path: String, file: KubeConfigFile)]) {
        for (path, file) in files {
            if currentContext == nil, let name = file.currentContext, !name.isEmpty {
                currentContext = Entry(value: name, file: path)
            }
            for named in file.clusters ?? [] where clusters[named.name] == nil {
                clusters[named.name] = Entry(value: named.value ?? .init(), file: path)
            }
            for named in file.users ?? [] where users[named.name] == nil {
                users[named.name] = Entry(value: named.value ?? .init(), file: path)
            }
            for named in file.contexts ?? [] where contexts[named.name] == nil {
                contexts[named.name] = Entry(value: named.value ?? .init(), file: path)
            }
        }
    }

    func resolve(options: KubeConfigLoader.Options, sourceFiles: [String]) throws -> KubeConfiguration {
        let fileList = sourceFiles.joined(separator: ", ")
        guard let contextName = options.context ?? currentContext?.value else {
            throw KubeConfigError(
                .noCurrentContext,
                "kubeconfig \(fileList) sets no current-context; pass --context (known: \(known(contexts)))")
        }
        guard let context = contexts[contextName] else {
            throw KubeConfigError(
                .contextNotFound, "context '\(contextName)' not found in \(fileList) (known: \(known(contexts)))")
        }
        guard let clusterName = context.value.cluster, let cluster = clusters[clusterName] else {
            throw KubeConfigError(
                .clusterNotFound,
                "context '\(contextName)' in \(context.file) points to cluster '\(context.value.cluster ?? "")', "
                    + "which is not defined (known: \(known(clusters)))")
        }
        let userName = context.value.user ?? ""
        let user: Entry<KubeConfigFile.User>
        if let found = users[userName] {
            user = found
        } else if userName.isEmpty {
            user = Entry(value: .init(), file: context.file)  // a context without a user is anonymous
        } else {
            throw KubeConfigError(
                .userNotFound,
                "context '\(contextName)' in \(context.file) points to user '\(userName)', which is not defined "
                    + "(known: \(known(users)))")
        }
        return KubeConfiguration(
            contextName: contextName, clusterName: clusterName, userName: userName,
            cluster: try endpoint(clusterName, cluster), auth: try auth(userName, user),
            namespace: options.namespace ?? context.value.namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            sourceFiles: sourceFiles)
    }

    private func known<V>(_ map: [String: Entry<V>]) -> String {
        map.isEmpty ? "none" : map.keys.sorted().joined(separator: ", ")
    }

    private func endpoint(_ name: String, _ entry: Entry<KubeConfigFile.Cluster>) throws -> ClusterEndpoint {
        let cluster = entry.value
        guard let server = cluster.server, !server.isEmpty else {
            throw KubeConfigError(.malformed, "cluster '\(name)' in \(entry.file) has no server")
        }
        guard let url = URL(string: server), let scheme = url.scheme, ["https", "http"].contains(scheme), url.host != nil
        else {
            throw KubeConfigError(
                .malformed, "cluster '\(name)' in \(entry.file): server '\(server)' is not an http(s) URL with a host")
        }
        // Data wins over the file, as in client-go.
        var ca: [UInt8]?
        let what = "certificate-authority of cluster '\(name)' in \(entry.file)"
        if let data = cluster.certificateAuthorityData, !data.isEmpty {
            ca = try decodeBase64(data, what: "certificate-authority-data of cluster '\(name)' in \(entry.file)")
        } else if let path = cluster.certificateAuthority, !path.isEmpty {
            ca = try readFile(resolvePath(path, relativeTo: entry.file), role: what)
        }
        if let ca { try PEM.requireCertificate(ca, what: what) }
        // kubectl refuses this pair: a CA says "verify the server", insecure says "do not". Taking either would
        // silently do what one of the two lines did not ask for.
        if ca != nil, cluster.insecureSkipTLSVerify == true {
            throw KubeConfigError(
                .malformed,
                "cluster '\(name)' in \(entry.file) has insecure-skip-tls-verify: true and a certificate-authority(-data); "
                    + "kubectl refuses this too (\"specifying a root certificates file with the insecure flag is not allowed\"). "
                    + "Remove insecure-skip-tls-verify to verify the server with that CA, or remove the CA")
        }
        return ClusterEndpoint(
            server: server, certificateAuthorityPEM: ca, insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false,
            tlsServerName: cluster.tlsServerName.flatMap { $0.isEmpty ? nil : $0 },
            proxyURL: cluster.proxyURL.flatMap { $0.isEmpty ? nil : $0 })
    }

    private func auth(_ name: String, _ entry: Entry<KubeConfigFile.User>) throws -> AuthConfig {
        let user = entry.value
        let prefix = "user '\(name)' in \(entry.file)"
        var auth = AuthConfig()
        if let data = user.clientCertificateData, !data.isEmpty {
            auth.clientCertificatePEM = try decodeBase64(data, what: "client-certificate-data of \(prefix)")
        } else if let path = user.clientCertificate, !path.isEmpty {
            auth.clientCertificatePEM = try readFile(resolvePath(path, relativeTo: entry.file), role: "client-certificate of \(prefix)")
        }
        if let data = user.clientKeyData, !data.isEmpty {
            auth.clientKeyPEM = Secret(try decodeBase64(data, what: "client-key-data of \(prefix)"))
        } else if let path = user.clientKey, !path.isEmpty {
            auth.clientKeyPEM = Secret(try readFile(resolvePath(path, relativeTo: entry.file), role: "client-key of \(prefix)"))
        }
        switch (auth.clientCertificatePEM, auth.clientKeyPEM) {
        case (let certificate?, let key?):
            try PEM.requireCertificate(certificate, what: "client certificate of \(prefix)")
            try PEM.requirePrivateKey(key.exposed, what: "client key of \(prefix)")
            try PEM.requireCurrentlyValid(certificate, what: "client certificate of \(prefix)")
        case (.some, nil):
            throw KubeConfigError(.malformed, "\(prefix) has a client certificate but no client-key(-data)")
        case (nil, .some):
            throw KubeConfigError(.malformed, "\(prefix) has a client key but no client-certificate(-data)")
        case (nil, nil):
            break
        }
        if let token = user.token, !token.isEmpty { auth.token = Secret(token) }
        if let path = user.tokenFile, !path.isEmpty {
            auth.tokenFile = resolvePath(path, relativeTo: entry.file)
            // Checked now, as certificate files are: a missing file is unreadable input (exit 2), not an auth
            // failure. It is still re-read on every request, so a rotated token is picked up.
            if auth.token == nil { _ = try readFile(auth.tokenFile!, role: "tokenFile of \(prefix)") }
        }
        if let username = user.username, !username.isEmpty {
            auth.username = username
            auth.password = Secret(user.password ?? "")
        }
        if var exec = user.exec {
            guard !exec.command.isEmpty else { throw KubeConfigError(.malformed, "\(prefix): exec has no command") }
            // A relative command path (one with a slash) is relative to the kubeconfig, as in client-go.
            if exec.command.contains("/") { exec.command = resolvePath(exec.command, relativeTo: entry.file) }
            auth.exec = exec
        }
        return auth
    }

    private func resolvePath(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("~/") { return NSHomeDirectory() + path.dropFirst() }
        return URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL.path
    }

    private func decodeBase64(_ text: String, what: String) throws -> [UInt8] {
        let compact = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: compact) else {
            throw KubeConfigError(.badBase64, "\(what) is not valid base64 (\(compact.count) characters)")
        }
        return Array(data)
    }
}
