import Foundation
import Synchronization

/// What to present to the API server on a request, after running exec plugins and reading token files.
public struct Credential: Sendable, Hashable {
    public var bearerToken: Secret?
    public var basicAuth: (username: String, password: Secret)? {
        get { username.map { ($0, password ?? Secret("")) } }
        set {
            username = newValue?.username
            password = newValue?.password
        }
    }
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: Secret?
    /// When an exec credential stops being valid; `nil` means "until the process ends".
    public var expiresAt: Date?

    private var username: String?
    private var password: Secret?

    public init(
        bearerToken: Secret? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: Secret? = nil,
        expiresAt: Date? = nil
    ) {
        self.bearerToken = bearerToken
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.expiresAt = expiresAt
    }

    public static func == (lhs: Credential, rhs: Credential) -> Bool {
        lhs.bearerToken == rhs.bearerToken && lhs.clientCertificatePEM == rhs.clientCertificatePEM
            && lhs.clientKeyPEM == rhs.clientKeyPEM && lhs.username == rhs.username && lhs.password == rhs.password
            && lhs.expiresAt == rhs.expiresAt
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(bearerToken)
        hasher.combine(clientCertificatePEM)
        hasher.combine(username)
    }
}

/// Produces the current credential for one kubeconfig user: static fields as they are, `tokenFile` re-read,
/// exec plugins run on first use and again once their `expirationTimestamp` has passed (or after
/// `invalidate()`, which a client calls on a 401).
public final class CredentialProvider: Sendable {
    public let auth: AuthConfig
    /// Cluster info handed to exec plugins that ask for it (`provideClusterInfo: true`).
    public let cluster: ClusterEndpoint
    /// The deadline for one exec plugin run.
    public let execTimeout: Duration
    /// Environment the plugin inherits (before the config's `env` is merged in).
    public let baseEnvironment: [String: String]
    private let cache = Mutex<Credential?>(nil)
    /// Counts plugin runs; tests use it to prove caching.
    private let runs = Mutex(0)

    public init(
        auth: AuthConfig, cluster: ClusterEndpoint, execTimeout: Duration = .seconds(30),
        baseEnvironment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.auth = auth
        self.cluster = cluster
        self.execTimeout = execTimeout
        self.baseEnvironment = baseEnvironment
    }

    public convenience init(_ configuration: KubeConfiguration, execTimeout: Duration = .seconds(30)) {
        self.init(auth: configuration.auth, cluster: configuration.cluster, execTimeout: execTimeout)
    }

    /// How many times the exec plugin has run.
    public var execRuns: Int { runs.withLock { $0 } }

    /// Forgets a cached exec credential, so the next call runs the plugin again.
    public func invalidate() { cache.withLock { $0 = nil } }

    /// The credential to use now.
    /// - Throws: `KubeConfigError` (`.fileUnreadable` for a tokenFile, `.execFailed`/`.execOutputInvalid`).
    public func current(now: Date = Date()) async throws -> Credential {
        var credential = Credential(clientCertificatePEM: auth.clientCertificatePEM, clientKeyPEM: auth.clientKeyPEM)
        if let username = auth.username { credential.basicAuth = (username, auth.password ?? Secret("")) }
        if let token = auth.token { credential.bearerToken = token }
        if let path = auth.tokenFile, auth.token == nil {
            let bytes = try readFile(path, role: "tokenFile")
            let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw KubeConfigError(.fileUnreadable, "tokenFile \(path) is empty") }
            credential.bearerToken = Secret(token)
        }
        if let exec = auth.exec {
            let fromPlugin = try await execCredential(exec, now: now)
            if let token = fromPlugin.bearerToken { credential.bearerToken = token }
            if let certificate = fromPlugin.clientCertificatePEM {
                credential.clientCertificatePEM = certificate
                credential.clientKeyPEM = fromPlugin.clientKeyPEM
            }
            credential.expiresAt = fromPlugin.expiresAt
        }
        return credential
    }

    private func execCredential(_ exec: ExecConfig, now: Date) async throws -> Credential {
        if let cached = cache.withLock({ $0 }), cached.expiresAt.map({ $0 > now }) ?? true { return cached }
        runs.withLock { $0 += 1 }
        let credential = try await ExecPlugin.run(exec, cluster: cluster, environment: baseEnvironment, timeout: execTimeout, now: now)
        cache.withLock { $0 = credential }
        return credential
    }
}
