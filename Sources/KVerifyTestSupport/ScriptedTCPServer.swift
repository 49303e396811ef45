import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP server that answers every connection with fixed bytes: a stand-in for a misbehaving server
/// (one that speaks HTTP, cuts a reply, never answers, or sends `-LOADING`) that a real Redis cannot imitate
/// on demand. Stopped by `stop()`, which `with` calls also when the body throws.
public final class ScriptedTCPServer: Sendable {
    /// What the server does once a client has sent its first bytes.
    public enum Script: Sendable {
        /// Sends `bytes`, then closes the connection (`close: true`) or keeps it open without a word more.
        case reply([UInt8], close: Bool)
        /// Reads and never answers.
        case silent
        /// Sends `head`, then `chunk` again and again as fast as the client takes it, until it goes away or the
        /// server stops: a body that never ends.
        case endless(head: [UInt8], chunk: [UInt8])
    }

    public let port: Int
    private let listener: Int32
    private let stopped = Mutex(false)
    private let finished = Mutex(false)

    public init(_ script: Script) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("ScriptedTCPServer: socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            close(fd)
            throw FixtureError("ScriptedTCPServer: bind/listen failed: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        let thread = Thread { [self] in serve(script) }
        thread.start()
    }

    public var address: String { "127.0.0.1:\(port)" }

    /// Stops accepting, closes every connection and waits (up to 5 s) for the server thread to end.
    public func stop() {
        stopped.withLock { $0 = true }
        let deadline = ContinuousClock.now + .seconds(5)
        while !finished.withLock({ $0 }) && ContinuousClock.now < deadline { usleep(10_000) }
    }

    /// Runs `body` with a server playing `script`, and stops it afterwards, also when `body` throws.
    public static func with<T>(_ script: Script, _ body: (ScriptedTCPServer) async throws -> T) async throws -> T {
        let server = try ScriptedTCPServer(script)
        defer { server.stop() }
        return try await body(server)
    }

    private func serve(_ script: Script) {
        var clients: [Int32] = []
        defer {
            for client in clients { close(client) }
            close(listener)
            finished.withLock { $0 = true }
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var answered: Set<Int32> = []
        while !stopped.withLock({ $0 }) {
            var descriptors = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
                + clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&descriptors, nfds_t(descriptors.count), 50) > 0 else { continue }
            if descriptors[0].revents & Int16(POLLIN) != 0 {
                let client = accept(listener, nil, nil)
                if client >= 0 { clients.append(client) }
            }
            for descriptor in descriptors.dropFirst() where descriptor.revents != 0 {
                let client = descriptor.fd
                let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                if count <= 0 {
                    close(client)
                    clients.removeAll { $0 == client }
                    continue
                }
                if case .endless(let head, let chunk) = script {
                    // The client is the streaming thread's from now on; it closes it.
                    clients.removeAll { $0 == client }
                    Thread { [self] in stream(head, then: chunk, to: client) }.start()
                    continue
                }
                guard case .reply(let bytes, let shouldClose) = script, !answered.contains(client) else { continue }
                answered.insert(client)
                _ = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if shouldClose {
                    close(client)
                    clients.removeAll { $0 == client }
                }
            }
        }
    }

    private func stream(_ head: [UInt8], then chunk: [UInt8], to client: Int32) {
        defer { close(client) }
        func sendAll(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
        }
        guard sendAll(head) else { return }
        while !stopped.withLock({ $0 }), sendAll(chunk) {}
    }
}
