/// Where a Redis server listens: `host:port`, `[v6-address]:port`.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` (`127.0.0.1:6379`, `redis-service:6379`, `[::1]:6379`).
    /// - Returns: the endpoint, or a failure saying what is wrong with the text.
    public static func parse(_ text: String) -> Result<RedisEndpoint, EndpointParseError> {
        // A URL (`redis://:password@host:6379`) or credentials (`user:password@host`): refused without echoing them.
        if text.contains("://") || text.contains("@") {
            var shown = text
            if let at = text.lastIndex(of: "@") {
                let start = text.firstRange(of: "://")?.upperBound ?? text.startIndex
                if start <= at { shown.replaceSubrange(start..<at, with: "REDACTED") }
            }
            return .failure(EndpointParseError("'\(shown)' is not HOST:PORT (e.g. 127.0.0.1:6379): no URL scheme or user:password@; "
                + "a password is read from the environment variable --password-env names, or from the exporter's REDIS_PASSWORD in a pattern run"))
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else {
                return .failure(EndpointParseError("'\(text)' is not [IPv6]:PORT"))
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                return .failure(EndpointParseError("'\(text)' has no port; expected HOST:PORT, e.g. 127.0.0.1:6379"))
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                return .failure(EndpointParseError("'\(text)': write an IPv6 address in brackets, e.g. [::1]:6379"))
            }
        }
        guard !host.isEmpty else { return .failure(EndpointParseError("'\(text)' has an empty host")) }
        guard let port = Int(portText), (1...65535).contains(port) else {
            return .failure(EndpointParseError("'\(text)': port '\(portText)' is not a number in 1…65535"))
        }
        return .success(RedisEndpoint(host: String(host), port: port))
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why an address is not `HOST:PORT`.
public struct EndpointParseError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
