import Foundation

/// A value that must never be printed: tokens, passwords, private keys. Its description is redacted, so
/// string interpolation into an error or a log line cannot leak it.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself; read it only to hand it to the transport.
    public let exposed: [UInt8]

    public init(_ bytes: [UInt8]) { exposed = bytes }
    public init(_ string: String) { exposed = Array(string.utf8) }

    public var exposedString: String { String(decoding: exposed, as: UTF8.self) }
    public var description: String { "<redacted \(exposed.count) bytes>" }
    public var debugDescription: String { description }
}

/// Where the API server is and how to trust it, after merging, base64 decoding and file reading.
public struct ClusterEndpoint: Sendable, Hashable {
    /// The server URL as written, e.g. `https://127.0.0.1:6443`.
    public var server: String
    /// PEM bundle to trust; `nil` means the system trust store.
    public var certificateAuthorityPEM: [UInt8]?
    /// Defaults to `false`, as in kubectl.
    public var insecureSkipTLSVerify: Bool
    /// The name to verify the server certificate against, when it differs from the URL's host.
    public var tlsServerName: String?
    public var proxyURL: String?

    public init(
        server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
        tlsServerName: String? = nil, proxyURL: String? = nil
    ) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.tlsServerName = tlsServerName
        self.proxyURL = proxyURL
    }
}

/// How to authenticate, as configured (exec plugins are run later, on demand, by `CredentialProvider`).
public struct AuthConfig: Sendable, Hashable {
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: Secret?
    public var token: Secret?
    /// Re-read on every credential request, so a rotated service-account token is picked up.
    public var tokenFile: String?
    public var username: String?
    public var password: Secret?
    public var exec: ExecConfig?

    public init() {}

    /// Which kinds of credential are configured, for messages (never the values).
    public var kinds: [String] {
        var kinds: [String] = []
        if clientCertificatePEM != nil { kinds.append("client certificate") }
        if token != nil { kinds.append("token") }
        if tokenFile != nil { kinds.append("tokenFile") }
        if username != nil { kinds.append("basic auth") }
        if exec != nil { kinds.append("exec plugin") }
        return kinds
    }
}

/// One context of a kubeconfig, fully resolved: what kverify connects to and as whom.
public struct KubeConfiguration: Sendable, Hashable {
    /// The context's name, or `in-cluster` for a pod's service account.
    public var contextName: String
    public var clusterName: String
    public var userName: String
    public var cluster: ClusterEndpoint
    public var auth: AuthConfig
    /// The context's namespace, overridden by `--namespace`; `default` when neither says.
    public var namespace: String
    /// The files merged, in precedence order; empty for in-cluster. The kubectl backend passes them on.
    public var sourceFiles: [String]
    /// Whether this came from a pod's service account rather than a file.
    public var isInCluster: Bool

    public init(
        contextName: String, clusterName: String, userName: String, cluster: ClusterEndpoint, auth: AuthConfig,
        namespace: String = "default", sourceFiles: [String] = [], isInCluster: Bool = false
    ) {
        self.contextName = contextName
        self.clusterName = clusterName
        self.userName = userName
        self.cluster = cluster
        self.auth = auth
        self.namespace = namespace
        self.sourceFiles = sourceFiles
        self.isInCluster = isInCluster
    }
}
