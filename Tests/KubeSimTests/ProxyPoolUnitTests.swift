import Foundation
import KVerifyTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
@testable import SimAPIServer
import Synchronization
import Testing

/// `ProxyPool` against a server that answers with keep-alive, then closes the connection anyway (a pod restarting,
/// an idle timeout): the pool must not hand out the closed connection again.
@Suite("the proxy's connection pool")
struct ProxyPoolUnitTests {
    static let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n".utf8)

    /// One GET on `connection`; the body, and whether the connection may carry another request.
    static func get(_ connection: ProxiedConnection) async throws -> (body: String, reusable: Bool) {
        final class Text: Sendable { let value = Mutex("") }
        let body = Text()
        let reusable = try await connection.run { inbound, outbound in
            // One flush, as the proxy sends it: the server answers and closes as soon as it has the head.
            try await outbound.write(contentsOf: [.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "pod"])), .end(nil)])
            var keepAlive = false
            while let part = try await inbound.next() {
                switch part {
                case .head(let head): keepAlive = head.isKeepAlive
                case .body(let chunk): body.value.withLock { $0 += String(buffer: chunk) }
                case .end: return keepAlive
                }
            }
            throw ChannelError.eof
        }
        return (body.value.withLock { $0 }, reusable)
    }

    @Test("a keep-alive connection is reused; one the server closed while idle is not, and a new one is dialled")
    func staleConnectionIsNotReused() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = ProxyPool(group: group)
        try await ScriptedTCPServer.with(.reply(Self.answer, close: false)) { keeps in
            let endpoint = ProxyPool.Endpoint(host: "127.0.0.1", port: keeps.port)
            let (first, firstReused) = try await pool.checkout(endpoint)
            #expect(!firstReused)
            #expect(try await Self.get(first) == ("ok\n", true))
            pool.checkin(first, endpoint)
            let (second, secondReused) = try await pool.checkout(endpoint)
            #expect(secondReused && second === first)
            second.close()
        }
        try await ScriptedTCPServer.with(.reply(Self.answer, close: true)) { closes in
            let endpoint = ProxyPool.Endpoint(host: "127.0.0.1", port: closes.port)
            let (first, _) = try await pool.checkout(endpoint)
            #expect(try await Self.get(first) == ("ok\n", true))
            pool.checkin(first, endpoint)
            // The server closed right after its answer; NIO sees the EOF once it reads.
            let deadline = ContinuousClock.now + .seconds(10)
            while first.isOpen, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let (second, reused) = try await pool.checkout(endpoint)
            #expect(!reused && second !== first)
            // A fresh checkout dials even when an idle connection is at hand.
            #expect(try await Self.get(second) == ("ok\n", true))
            pool.checkin(second, endpoint)
            let (third, thirdReused) = try await pool.checkout(endpoint, fresh: true)
            #expect(!thirdReused && third !== second)
        }
        // closeAll closes every connection, in use or idle, and waits for their tasks before the loops go away.
        await pool.closeAll()
        try await group.shutdownGracefully()
    }
}
