/// Value types of kverify's HTTP client. The client itself is `HTTPClient` (libcurl underneath).

public struct HTTPHeader: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [HTTPHeader]
    public var body: [UInt8]?
    /// Deadline for the whole call, connection to last byte. `nil` only for streams that end on their own
    /// (a watch with `timeoutSeconds`), which still have `lowSpeedTimeout`.
    public var timeout: Duration?
    public var connectTimeout: Duration
    /// A stream that delivers nothing for this long is cut (catches a watch whose server went silent).
    public var lowSpeedTimeout: Duration?
    /// Larger bodies end the call with `HTTPError.tooLarge` instead of filling memory.
    public var maxResponseBytes: Int

    public init(
        method: String = "GET",
        url: String,
        headers: [HTTPHeader] = [],
        body: [UInt8]? = nil,
        timeout: Duration? = .seconds(30),
        connectTimeout: Duration = .seconds(10),
        lowSpeedTimeout: Duration? = nil,
        maxResponseBytes: Int = 64 << 20
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.lowSpeedTimeout = lowSpeedTimeout
        self.maxResponseBytes = maxResponseBytes
    }
}

/// TLS and connection settings shared by every request of one client. Certificates and keys stay in memory:
/// libcurl receives them as blobs, so no key material is written to disk.
public struct TLSOptions: Sendable {
    /// PEM CA bundle to trust instead of the system store.
    public var caPEM: [UInt8]?
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// Off only when a kubeconfig says `insecure-skip-tls-verify: true`.
    public var verifyPeer: Bool
    /// `CURLOPT_CONNECT_TO` entries (`HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT`), used to honour `tls-server-name`.
    public var connectTo: [String]
    public var proxyURL: String?

    public init(
        caPEM: [UInt8]? = nil,
        clientCertificatePEM: [UInt8]? = nil,
        clientKeyPEM: [UInt8]? = nil,
        verifyPeer: Bool = true,
        connectTo: [String] = [],
        proxyURL: String? = nil
    ) {
        self.caPEM = caPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.verifyPeer = verifyPeer
        self.connectTo = connectTo
        self.proxyURL = proxyURL
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public init(status: Int, headers: [HTTPHeader], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The last value of a header, matched case-insensitively.
    public func header(_ name: String) -> String? { headers.value(of: name) }
}

/// A response whose body arrives in chunks as the server sends them (a watch, a log follow).
public struct HTTPStreamingResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    public var body: AsyncThrowingStream<[UInt8], any Error>

    public func header(_ name: String) -> String? { headers.value(of: name) }
}

extension [HTTPHeader] {
    func value(of name: String) -> String? {
        let wanted = name.lowercased()
        return last { $0.name.lowercased() == wanted }?.value
    }
}

/// Why a call produced no usable response. Each case carries the URL and libcurl's own explanation;
/// none carries a header value, so tokens never end up in an error message.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// DNS failure, refused or unreachable.
        case connectionFailed = "connection failed"
        /// Handshake or certificate verification failed, or a certificate/key could not be used.
        case tlsFailed = "TLS failed"
        case timedOut = "timed out"
        /// The body exceeded `maxResponseBytes`.
        case tooLarge = "response too large"
        /// The server closed the connection early or sent something that is not HTTP.
        case protocolError = "protocol error"
        case invalidRequest = "invalid request"
    }

    public var kind: Kind
    public var url: String
    public var reason: String

    public init(_ kind: Kind, url: String, reason: String) {
        self.kind = kind
        self.url = url
        self.reason = reason
    }

    public var description: String { "\(url): \(kind.rawValue): \(reason)" }
}

extension Duration {
    /// Whole milliseconds, at least 1: libcurl reads 0 as "no limit", so a deadline of zero (or one already
    /// passed) must still be the shortest limit curl knows, never none. Saturates instead of overflowing.
    var curlMilliseconds: Int {
        let (seconds, attoseconds) = components
        guard self > .zero else { return 1 }
        guard seconds < Int64(Int.max / 1000) - 1 else { return Int.max }
        return Swift.max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
