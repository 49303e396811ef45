import Foundation
import HTTP
import KVerifyTestSupport
import Testing

@Suite("HTTPClient deadlines at their edges")
struct HTTPDeadlineTests {
    static let stalling = Array("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial".utf8)

    // libcurl reads a timeout of 0 ms as "no limit": a deadline of zero (or below a millisecond, once rounded)
    // must still end a transfer that stalls after its headers.
    @Test("a zero or sub-millisecond deadline still ends a stalled transfer with timedOut",
          arguments: [Duration.zero, .microseconds(100), .nanoseconds(1)])
    func tinyDeadline(timeout: Duration) async throws {
        try await ScriptedTCPServer.with(.reply(Self.stalling, close: false)) { server in
            let client = HTTPClient()
            defer { client.shutdown() }
            let error = try await #require(throws: HTTPError.self) {
                try await client.execute(HTTPRequest(url: "http://\(server.address)/metrics", timeout: timeout, connectTimeout: timeout))
            }
            #expect(error.kind == .timedOut, "\(error)")
        }
    }
}
