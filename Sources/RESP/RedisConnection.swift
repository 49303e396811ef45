#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One TCP connection to a Redis server over plain POSIX sockets. Every wait (connect, write, read) is a
/// `poll()` bounded by a deadline, so a silent or vanished server ends in a `RedisError`, never a hang.
///
/// Pipelining: put N commands in a `RESPCommandBuffer`, call `pipeline`, receive N replies in order. Writing
/// and reading interleave, so a large batch cannot deadlock on full socket buffers.
///
/// Not thread-safe: one connection is used by one task at a time (it is deliberately not `Sendable`).
public final class RedisConnection {
    /// How to reach and log in to the server.
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        public var credentials: RedisCredentials?
        /// Logical database for `SELECT`; 0 sends no SELECT.
        public var database: Int
        public var connectTimeout: Duration
        /// Deadline for one command or pipeline, from the first byte written to the last reply read.
        public var operationTimeout: Duration

        public init(
            endpoint: RedisEndpoint,
            credentials: RedisCredentials? = nil,
            database: Int = 0,
            connectTimeout: Duration = .seconds(5),
            operationTimeout: Duration = .seconds(10)
        ) {
            self.endpoint = endpoint
            self.credentials = credentials
            self.database = database
            self.connectTimeout = connectTimeout
            self.operationTimeout = operationTimeout
        }
    }

    public let endpoint: RedisEndpoint
    public let operationTimeout: Duration
    private var fd: Int32
    private var parser = RESPParser()
    /// Only to scrub it from server messages before they reach an error.
    private let password: String?
    /// Set once the stream position is unknown (timeout, protocol error, close): later calls fail fast.
    private var broken: RedisError?
    private var readBuffer = [UInt8](repeating: 0, count: 256 * 1024)
    /// Commands written whose replies have not been read yet.
    private var outstanding = 0

    private init(socket: Int32, configuration: Configuration) {
        self.fd = socket
        endpoint = configuration.endpoint
        operationTimeout = configuration.operationTimeout
        password = configuration.credentials?.password
    }

    deinit { close() }

    /// Connects, authenticates (`AUTH [user] password`), selects the database and checks the server answers
    /// `PING` with `PONG`, all within the configured deadlines.
    /// - Throws: `RedisError` of kind `.connect`, `.timeout`, `.authentication` (WRONGPASS, NOAUTH), `.server`
    ///   (LOADING, SELECT out of range), `.closed` or `.protocolViolation` (not a Redis server).
    public static func connect(_ configuration: Configuration) throws(RedisError) -> RedisConnection {
        let socket = try openSocket(configuration.endpoint, timeout: configuration.connectTimeout)
        let connection = RedisConnection(socket: socket, configuration: configuration)
        try connection.handshake(configuration)
        return connection
    }

    /// Sends one command and returns its reply (an error reply is returned as `.error`, not thrown).
    public func command(_ arguments: [String]) throws(RedisError) -> RESPValue {
        var buffer = RESPCommandBuffer()
        buffer.append(arguments)
        var reply = RESPValue.null
        try pipeline(buffer, purpose: arguments.first ?? "command") { _, value in reply = value }
        return reply
    }

    /// Writes every command in `commands` and returns their replies in order.
    public func pipeline(_ commands: RESPCommandBuffer, purpose: String = "pipeline") throws(RedisError) -> [RESPValue] {
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        try pipeline(commands, purpose: purpose) { _, value in replies.append(value) }
        return replies
    }

    /// Writes every command in `commands` and hands each reply to `handle` as it is parsed, so replies need not
    /// be held in memory together. `handle` receives the command index and the reply.
    /// - Parameter purpose: names the batch in error messages (e.g. "SCAN batch 12").
    public func pipeline(
        _ commands: RESPCommandBuffer,
        purpose: String = "pipeline",
        _ handle: (Int, RESPValue) -> Void
    ) throws(RedisError) {
        try send(commands, purpose: purpose)
        try receive(commands.count, purpose: purpose, handle)
    }

    /// Writes commands without waiting for their replies, so the server can work on them while the caller does
    /// something else; collect the replies, in order, with `receive`.
    public func send(_ commands: RESPCommandBuffer, purpose: String = "pipeline") throws(RedisError) {
        try guarded { () throws(RedisError) in
            outstanding += commands.count
            try exchange(commands.bytes, expecting: 0, purpose: purpose) { _, _ in }
        }
    }

    /// Reads the next `count` replies to commands written by `send`.
    public func receive(_ count: Int, purpose: String = "pipeline", _ handle: (Int, RESPValue) -> Void) throws(RedisError) {
        guard count <= outstanding else {
            throw RedisError(
                .protocolViolation, address: endpoint.description,
                "\(purpose): asked for \(count) replies but only \(outstanding) commands are outstanding")
        }
        try guarded { () throws(RedisError) in try exchange([], expecting: count, purpose: purpose, handle) }
    }

    /// Reads the next `count` replies to commands written by `send`.
    public func receive(_ count: Int, purpose: String = "pipeline") throws(RedisError) -> [RESPValue] {
        var replies: [RESPValue] = []
        replies.reserveCapacity(count)
        try receive(count, purpose: purpose) { _, value in replies.append(value) }
        return replies
    }

    /// Runs `body` unless the connection is already broken, and marks it broken if `body` fails: after a
    /// timeout or protocol error the position in the reply stream is unknown.
    private func guarded(_ body: () throws(RedisError) -> Void) throws(RedisError) {
        if let broken { throw broken }
        do {
            try body()
        } catch {
            broken = error
            throw error
        }
    }

    /// Closes the socket. Safe to call twice.
    public func close() {
        if fd >= 0 {
            _ = systemClose(fd)
            fd = -1
        }
        if broken == nil { broken = RedisError(.closed, address: endpoint.description, "connection was closed by kverify") }
    }

    // MARK: - Handshake

    private func handshake(_ configuration: Configuration) throws(RedisError) {
        var batch = RESPCommandBuffer()
        var steps: [String] = []
        if let credentials = configuration.credentials {
            if let user = credentials.username {
                batch.append(["AUTH", user, credentials.password])
            } else {
                batch.append(["AUTH", credentials.password])
            }
            steps.append("AUTH as user '\(credentials.username ?? "default")'")
        }
        if configuration.database != 0 {
            batch.append(["SELECT", String(configuration.database)])
            steps.append("SELECT \(configuration.database)")
        }
        batch.append(["PING"])
        steps.append("PING")
        let replies = try pipeline(batch, purpose: "handshake")
        for (step, reply) in zip(steps, replies) {
            if let message = reply.errorMessage {
                throw handshakeError(step: step, message: scrub(message), authenticated: configuration.credentials != nil)
            }
        }
        guard let pong = replies.last, pong == .simpleString("PONG") else {
            throw RedisError(
                .protocolViolation, address: endpoint.description,
                "expected +PONG in reply to PING, saw \(replies.last?.summary ?? "nothing")")
        }
    }

    private func handshakeError(step: String, message: String, authenticated: Bool) -> RedisError {
        let address = endpoint.description
        let code = message.prefix { $0 != " " }
        switch code {
        case "WRONGPASS", "NOPERM":
            return RedisError(.authentication, address: address, "\(step) was rejected: \(message)")
        case "NOAUTH":
            let hint = authenticated ? "" : "; no password was given (kverify: --password-env VAR)"
            return RedisError(.authentication, address: address, "server requires authentication: \(message)\(hint)")
        case "LOADING":
            return RedisError(.server, address: address, "server is still loading its dataset: \(message); retry when it is done")
        default:
            if step.hasPrefix("AUTH") {
                return RedisError(.authentication, address: address, "\(step) failed: \(message)")
            }
            return RedisError(.server, address: address, "\(step) failed: \(message)")
        }
    }

    /// Replaces the password in a server message (Redis does not echo it, but an unknown server might). An error
    /// reply is one line, and a server reading commands inline splits them at spaces, so a password with CR, LF,
    /// another control character or a space can come back in pieces: each piece of three characters or more is
    /// hidden too.
    private func scrub(_ message: String) -> String {
        guard let password, !password.isEmpty else { return message }
        var scrubbed = message.replacing(password, with: "(password hidden)")
        let pieces = password.split { $0.isWhitespace || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }
        for piece in pieces.sorted(by: { $0.count > $1.count }) where piece.count >= 3 {
            scrubbed = scrubbed.replacing(piece, with: "(password hidden)")
        }
        return scrubbed
    }

    // MARK: - I/O

    /// Writes `bytes` and reads until `expecting` replies have been handed to `handle`, both within one deadline.
    /// Bytes that arrive while writing are buffered in the parser, so neither side can block the other.
    private func exchange(
        _ bytes: [UInt8], expecting: Int, purpose: String, _ handle: (Int, RESPValue) -> Void
    ) throws(RedisError) {
        let address = endpoint.description
        let deadline = ContinuousClock.now + operationTimeout
        var written = 0
        var received = 0
        // Replies of an earlier `send` may already sit in the parser's buffer.
        try drain(expecting: expecting, received: &received, purpose: purpose, handle)
        while written < bytes.count || received < expecting {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                throw RedisError(
                    .timeout, address: address,
                    "\(purpose): no reply within \(operationTimeout) (received \(received) of \(expecting) replies"
                        + (written < bytes.count ? ", \(bytes.count - written) bytes not yet written" : "")
                        + (parser.isMidReply ? ", stalled in the middle of a reply)" : ")"))
            }
            var events = Int16(POLLIN)
            if written < bytes.count { events |= Int16(POLLOUT) }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: max(1, remaining.milliseconds)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw RedisError(.closed, address: address, "\(purpose): poll failed: \(errnoText())")
            }
            if ready == 0 { continue }
            if descriptor.revents & Int16(POLLOUT) != 0 && written < bytes.count {
                let sent = bytes.withUnsafeBytes { raw in
                    systemSend(fd, raw.baseAddress! + written, min(raw.count - written, 1 << 20))
                }
                if sent > 0 {
                    written += sent
                } else if sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    throw RedisError(
                        .closed, address: address,
                        "\(purpose): write failed after \(received) of \(expecting) replies: \(errnoText())")
                }
            }
            if descriptor.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let count = readBuffer.withUnsafeMutableBytes { raw in recv(fd, raw.baseAddress, raw.count, 0) }
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    let why = count == 0 ? "closed the connection" : "reset the connection (\(errnoText()))"
                    throw RedisError(
                        .closed, address: address,
                        "\(purpose): server \(why) after \(received) of \(expecting) replies"
                            + (parser.isMidReply ? ", in the middle of a reply" : ""))
                }
                if count > 0 {
                    readBuffer.withUnsafeBytes { raw in parser.append(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
                    try drain(expecting: expecting, received: &received, purpose: purpose, handle)
                }
            }
        }
        outstanding -= expecting
        if outstanding == 0 && parser.bufferedByteCount > 0 {
            throw RedisError(
                .protocolViolation, address: address,
                "\(purpose): \(parser.bufferedByteCount) unexpected bytes after the last of \(expecting) replies")
        }
    }

    private func drain(
        expecting: Int, received: inout Int, purpose: String, _ handle: (Int, RESPValue) -> Void
    ) throws(RedisError) {
        do {
            while received < expecting, let reply = try parser.next() {
                handle(received, reply)
                received += 1
            }
        } catch {
            throw RedisError(.protocolViolation, address: endpoint.description, "\(purpose): \(error)")
        }
    }

    private static func openSocket(_ endpoint: RedisEndpoint, timeout: Duration) throws(RedisError) -> Int32 {
        let address = endpoint.description
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(sockStream)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = String(cString: gai_strerror(status))
            throw RedisError(.connect, address: address, "cannot resolve host '\(endpoint.host)': \(reason)")
        }
        defer { freeaddrinfo(first) }
        let deadline = ContinuousClock.now + timeout
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            entry = current.pointee.ai_next
            let fd = systemSocket(current.pointee.ai_family, current.pointee.ai_socktype, current.pointee.ai_protocol)
            guard fd >= 0 else {
                lastError = errnoText()
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            if systemConnect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else {
                lastError = errnoText()
                _ = systemClose(fd)
                continue
            }
            let remaining = deadline - ContinuousClock.now
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32 = -1
            repeat {
                ready = poll(&descriptor, 1, Int32(clamping: max(0, remaining.milliseconds)))
            } while ready < 0 && errno == EINTR
            if ready == 0 {
                _ = systemClose(fd)
                throw RedisError(.timeout, address: address, "TCP connect did not complete within \(timeout)")
            }
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
            if ready > 0 && socketError == 0 { return fd }
            lastError = String(cString: strerror(socketError != 0 ? socketError : errno))
            _ = systemClose(fd)
        }
        throw RedisError(.connect, address: address, "cannot connect: \(lastError.lowercased())")
    }
}

#if canImport(Glibc)
private let sockStream = SOCK_STREAM.rawValue
private func systemSend(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    send(fd, pointer, count, Int32(MSG_NOSIGNAL))  // a closed peer must be an error, not SIGPIPE
}
#else
private let sockStream = SOCK_STREAM
private func systemSend(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    send(fd, pointer, count, 0)
}
#endif

private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemSocket(_ family: Int32, _ type: Int32, _ proto: Int32) -> Int32 { socket(family, type, proto) }
private func systemConnect(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>!, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}

private func errnoText() -> String { String(cString: strerror(errno)) }

extension Duration {
    /// Whole milliseconds, rounded up so a short positive remainder still waits.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}
