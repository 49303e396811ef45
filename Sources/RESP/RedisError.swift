/// Why talking to a Redis server failed. The message names the server address, what was expected and what
/// was seen; it never contains a password.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct around a private enum so kinds can be added without breaking callers.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Code: String { case connect, timeout, closed, protocolViolation, authentication, server }
        private let code: Code

        /// Name resolution or TCP connect failed.
        public static let connect = Kind(code: .connect)
        /// A deadline passed while connecting, writing or waiting for a reply.
        public static let timeout = Kind(code: .timeout)
        /// The server closed the connection (possibly in the middle of a reply).
        public static let closed = Kind(code: .closed)
        /// The server sent bytes that are not RESP, or a reply of an unexpected shape.
        public static let protocolViolation = Kind(code: .protocolViolation)
        /// AUTH was rejected, or the server demands authentication (NOAUTH, WRONGPASS, NOPERM).
        public static let authentication = Kind(code: .authentication)
        /// The server answered a command with an error (e.g. LOADING, SELECT out of range).
        public static let server = Kind(code: .server)

        public var description: String { code.rawValue }
    }

    public var kind: Kind
    /// `host:port` of the server.
    public var address: String
    public var message: String

    public init(_ kind: Kind, address: String, _ message: String) {
        self.kind = kind
        self.address = address
        self.message = message
    }

    public var description: String { "redis \(address): \(message)" }
}

/// A password, with an optional ACL user name. Its descriptions never show the password.
public struct RedisCredentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// ACL user; nil authenticates as the `default` user (`AUTH password`).
    public var username: String?
    public var password: String

    public init(username: String? = nil, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "user '\(username ?? "default")' with a password (hidden)" }
    public var debugDescription: String { description }
}
