/// Why a kubeconfig could not be turned into working credentials. Messages name the file, context, cluster or
/// user, what was expected and what was seen — and never contain a token, password or key.
public struct KubeConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What went wrong, as a label safe to match on.
    public enum Code: String, Sendable, Equatable {
        /// No kubeconfig file, no `KUBECONFIG`, no service account.
        case noConfiguration
        case fileUnreadable
        /// YAML that does not parse, or fields of the wrong type.
        case malformed
        case noCurrentContext
        case contextNotFound
        case clusterNotFound
        case userNotFound
        /// A `*-data` field that is not base64.
        case badBase64
        /// Certificate or key bytes that are not PEM.
        case badPEM
        /// The client certificate's validity period is over (or not yet begun).
        case certificateExpired
        /// The exec plugin could not start, exited non-zero, or ran past its deadline.
        case execFailed
        /// The exec plugin's output is not an `ExecCredential` with a token or a client certificate.
        case execOutputInvalid
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Whether obtaining credentials failed (an exec plugin, an expired certificate) rather than the file being
    /// wrong: the first is an authentication failure, the second a configuration error.
    public var isCredentialFailure: Bool {
        [.execFailed, .execOutputInvalid, .certificateExpired].contains(code)
    }
}
