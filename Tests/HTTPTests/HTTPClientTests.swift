import Foundation
import HTTP
import KVerifyTestSupport
import Testing

@Suite("HTTPClient against a real local server")
struct HTTPClientTests {
    @Test("GET returns status, headers and the whole body")
    func plainGet() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let response = try await client.execute(HTTPRequest(url: server.url("/text")))
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/plain; version=0.0.4")
        #expect(String(decoding: response.body, as: UTF8.self) == "# TYPE up gauge\nup 1\n")
    }

    @Test("HTTP error statuses are responses, not transport errors", arguments: [404, 500, 503])
    func errorStatus(code: Int) async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let response = try await client.execute(HTTPRequest(url: server.url("/status/\(code)")))
        #expect(response.status == code)
    }

    @Test("methods, headers and request bodies reach the server")
    func echo() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let request = HTTPRequest(
            method: "PATCH", url: server.url("/echo"),
            headers: [HTTPHeader("Content-Type", "application/apply-patch+yaml"), HTTPHeader("X-Test", "yes")],
            body: Array("kind: Namespace\n".utf8))
        let response = try await client.execute(request)
        let echoed = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(echoed["method"] as? String == "PATCH")
        #expect(echoed["body"] as? String == "kind: Namespace\n")
        let headers = try #require(echoed["headers"] as? [String: String])
        #expect(headers["X-Test"] == "yes")
        #expect(headers["Content-Type"] == "application/apply-patch+yaml")
    }

    @Test("connection refused is a connectionFailed error naming the URL")
    func refused() async throws {
        let port = try TCPProbe.freePort()
        let client = HTTPClient()
        defer { client.shutdown() }
        let url = "http://127.0.0.1:\(port)/metrics"
        let error = try await #require(throws: HTTPError.self) { try await client.execute(HTTPRequest(url: url)) }
        #expect(error.kind == .connectionFailed)
        #expect(error.description.contains(url))
    }

    @Test("a server slower than the deadline gives timedOut")
    func timeout() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let error = try await #require(throws: HTTPError.self) {
            try await client.execute(HTTPRequest(url: server.url("/slow/5"), timeout: .milliseconds(300)))
        }
        #expect(error.kind == .timedOut)
    }

    @Test("a body over maxResponseBytes is cut with tooLarge")
    func tooLarge() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let error = try await #require(throws: HTTPError.self) {
            try await client.execute(HTTPRequest(url: server.url("/big/5000000"), maxResponseBytes: 100_000))
        }
        #expect(error.kind == .tooLarge)
        #expect(error.reason.contains("100000"))
    }

    @Test("a declared Content-Length over maxResponseBytes fails at the first bytes, not after reading up to the limit")
    func declaredTooLarge() async throws {
        // 10 GiB declared, 4 bytes sent, then the server stalls: only the declared length can end this before the deadline.
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10737418240\r\n\r\na 1\n"
        try await ScriptedTCPServer.with(.reply(Array(head.utf8), close: false)) { server in
            let client = HTTPClient()
            defer { client.shutdown() }
            let error = try await #require(throws: HTTPError.self) {
                try await client.execute(HTTPRequest(url: "http://\(server.address)/metrics", timeout: .seconds(20), maxResponseBytes: 1000))
            }
            #expect(error.kind == .tooLarge, "\(error)")
        }
    }

    @Test("a server closing mid-body is a protocol error, not a short success")
    func closedMidBody() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let error = try await #require(throws: HTTPError.self) {
            try await client.execute(HTTPRequest(url: server.url("/close-mid-body")))
        }
        #expect(error.kind == .protocolError)
    }

    @Test("streamed bodies arrive chunk by chunk and end cleanly")
    func streaming() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let response = try await client.stream(HTTPRequest(url: server.url("/chunks/5/20")))
        #expect(response.status == 200)
        var received: [UInt8] = []
        for try await chunk in response.body { received += chunk }
        let lines = String(decoding: received, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines == (0..<5).map { "{\"index\": \($0)}" })
    }

    @Test("many concurrent requests share one client")
    func concurrent() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<50 { group.addTask { try await client.execute(HTTPRequest(url: server.url("/status/\(200 + index % 2)"))).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.count == 50)
        #expect(statuses.filter { $0 == 200 }.count == 25)
    }

    @Test("cancelling the calling task ends a slow request promptly")
    func cancellation() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let task = Task { try await client.execute(HTTPRequest(url: server.url("/slow/10"))) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
    }
}

@Suite("HTTPClient TLS with certificates from openssl")
struct HTTPClientTLSTests {
    @Test("verifies the server against an in-memory CA and presents a client certificate")
    func mutualTLS() async throws {
        let pki = try await TestCertificates.generate()
        defer { pki.remove() }
        let server = try await HTTPTestServer(certificates: pki, requireClientCertificate: true)
        defer { server.stop() }
        let client = HTTPClient(tls: TLSOptions(
            caPEM: try pki.data(pki.caCertificate),
            clientCertificatePEM: try pki.data(pki.clientCertificate),
            clientKeyPEM: try pki.data(pki.clientKey)))
        defer { client.shutdown() }
        let response = try await client.execute(HTTPRequest(url: server.url("/text")))
        #expect(response.status == 200)
    }

    @Test("a server certificate from another CA fails verification with tlsFailed")
    func wrongCA() async throws {
        let pki = try await TestCertificates.generate()
        defer { pki.remove() }
        let server = try await HTTPTestServer(certificates: pki)
        defer { server.stop() }
        let client = HTTPClient(tls: TLSOptions(caPEM: try pki.data(pki.otherCACertificate)))
        defer { client.shutdown() }
        let error = try await #require(throws: HTTPError.self) { try await client.execute(HTTPRequest(url: server.url("/text"))) }
        #expect(error.kind == .tlsFailed)
    }

    @Test("without a client certificate a server that requires one refuses the handshake")
    func missingClientCertificate() async throws {
        let pki = try await TestCertificates.generate()
        defer { pki.remove() }
        let server = try await HTTPTestServer(certificates: pki, requireClientCertificate: true)
        defer { server.stop() }
        let client = HTTPClient(tls: TLSOptions(caPEM: try pki.data(pki.caCertificate)))
        defer { client.shutdown() }
        let error = try await #require(throws: HTTPError.self) { try await client.execute(HTTPRequest(url: server.url("/text"))) }
        #expect(error.kind == .tlsFailed || error.kind == .protocolError)
    }

    @Test("verification off (insecure-skip-tls-verify) accepts an unknown CA")
    func insecure() async throws {
        let pki = try await TestCertificates.generate()
        defer { pki.remove() }
        let server = try await HTTPTestServer(certificates: pki)
        defer { server.stop() }
        let client = HTTPClient(tls: TLSOptions(verifyPeer: false))
        defer { client.shutdown() }
        #expect(try await client.execute(HTTPRequest(url: server.url("/text"))).status == 200)
    }
}

/// The loop thread yields body chunks to the reading task while that task may be being cancelled; the two once took
/// the transfer's lock and the task's status lock in opposite orders and deadlocked (seen in a 500-node readiness
/// run). Cancelling readers of a body that never ends, hundreds of times, must always come back.
@Suite("HTTPClient: cancelling a streamed body while it flows")
struct HTTPStreamCancellationTests {
    @Test("300 readers of an endless body cancelled mid-flow all end, and the client still works")
    func cancelMidFlow() async throws {
        let head = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".utf8)
        try await ScriptedTCPServer.with(.endless(head: head, chunk: Array(repeating: UInt8(ascii: "a"), count: 16_384))) { server in
            let client = HTTPClient()
            let request = HTTPRequest(url: "http://\(server.address)/")
            let rounds = Task {
                for round in 0..<300 {
                    let reader = Task {
                        let response = try await client.stream(request)
                        for try await _ in response.body {}
                    }
                    try await Task.sleep(for: .microseconds(200 * (round % 10)))
                    reader.cancel()
                    _ = await reader.result
                }
            }
            let finished = (try? await awaitResult(of: rounds, within: .seconds(120))?.get()) != nil
            #expect(finished, "a cancelled reader never came back: the client's loop thread is stuck")
            // Only a client whose loop is not stuck can be shut down (shutdown waits for the loop thread).
            if finished { client.shutdown() }
        }
    }
}
