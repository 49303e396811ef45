import KVerifyTestSupport
import Testing

@testable import RESP

@Suite("RedisConnection against a real redis-server")
struct RedisConnectionTests {
    private func configuration(
        _ address: String, credentials: RedisCredentials? = nil, database: Int = 0, timeout: Duration = .seconds(10)
    ) throws -> RedisConnection.Configuration {
        RedisConnection.Configuration(
            endpoint: try RedisEndpoint.parse(address).get(), credentials: credentials, database: database,
            connectTimeout: timeout, operationTimeout: timeout)
    }

    @Test("commands round-trip and error replies come back as values")
    func roundTrip() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try RedisConnection.connect(try configuration(redis.address))
            #expect(try connection.command(["SET", "k", "v\r\nw"]) == .simpleString("OK"))
            #expect(try connection.command(["GET", "k"]) == .bulkString(Array("v\r\nw".utf8)))
            #expect(try connection.command(["GET", "missing"]) == .null)
            let reply = try connection.command(["NOSUCHCOMMAND"])
            #expect(reply.errorMessage?.hasPrefix("ERR unknown command") == true)
            // The connection is still usable after an error reply.
            #expect(try connection.command(["PING"]) == .simpleString("PONG"))
        }
    }

    @Test("a pipeline of 20,000 commands returns every reply in order")
    func pipelining() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try RedisConnection.connect(try configuration(redis.address))
            var batch = RESPCommandBuffer()
            for _ in 0..<20_000 { batch.append(["INCR", "counter"]) }
            let replies = try connection.pipeline(batch)
            #expect(replies == (1...20_000).map { RESPValue.integer(Int64($0)) })
            // A 4 MB value crosses many reads and writes.
            let big = String(repeating: "x", count: 4 << 20)
            #expect(try connection.command(["SET", "big", big]) == .simpleString("OK"))
            #expect(try connection.command(["STRLEN", "big"]) == .integer(4 << 20))
            #expect(try connection.command(["GET", "big"]).bytes?.count == 4 << 20)
        }
    }

    @Test("SELECT switches the database; an out-of-range database is a server error")
    func selectDatabase() async throws {
        try await RedisServerFixture.with { redis in
            let db3 = try RedisConnection.connect(try configuration(redis.address, database: 3))
            _ = try db3.command(["SET", "only-in-3", "1"])
            let db0 = try RedisConnection.connect(try configuration(redis.address))
            #expect(try db0.command(["EXISTS", "only-in-3"]) == .integer(0))
            #expect(try db3.command(["EXISTS", "only-in-3"]) == .integer(1))
            #expect {
                _ = try RedisConnection.connect(try configuration(redis.address, database: 99))
            } throws: { error in
                let error = error as? RedisError
                return error?.kind == .server && error?.message.contains("SELECT 99 failed: ERR DB index is out of range") == true
            }
        }
    }

    @Test("AUTH with the right password works; a wrong or missing one is an authentication error without the password")
    func passwordAuthentication() async throws {
        try await RedisServerFixture.with(password: "correct-horse") { redis in
            let good = try RedisConnection.connect(
                try configuration(redis.address, credentials: RedisCredentials(password: "correct-horse")))
            #expect(try good.command(["PING"]) == .simpleString("PONG"))

            #expect {
                _ = try RedisConnection.connect(try configuration(redis.address, credentials: RedisCredentials(password: "battery-staple")))
            } throws: { error in
                let error = error as? RedisError
                return error?.kind == .authentication && error?.message.contains("WRONGPASS") == true
                    && error?.description.contains("battery-staple") == false
                    && error?.description.contains(redis.address) == true
            }
            #expect {
                _ = try RedisConnection.connect(try configuration(redis.address))
            } throws: { error in
                let error = error as? RedisError
                return error?.kind == .authentication && error?.message.contains("NOAUTH") == true
                    && error?.message.contains("no password was given") == true
            }
        }
    }

    @Test("AUTH as an ACL user")
    func aclAuthentication() async throws {
        let redis = try await RedisServerFixture(aclUsers: [("auditor", "acl-secret")])
        defer { redis.stop() }
        let good = try RedisConnection.connect(
            try configuration(redis.address, credentials: RedisCredentials(username: "auditor", password: "acl-secret")))
        #expect(try good.command(["ACL", "WHOAMI"]).string == "auditor")
        #expect {
            _ = try RedisConnection.connect(
                try configuration(redis.address, credentials: RedisCredentials(username: "auditor", password: "nope")))
        } throws: { error in
            let error = error as? RedisError
            return error?.kind == .authentication && error?.message.contains("AUTH as user 'auditor' was rejected: WRONGPASS") == true
        }
        #expect(String(describing: RedisCredentials(username: "auditor", password: "acl-secret")).contains("acl-secret") == false)
    }

    @Test("a port nobody listens on is a connect error")
    func refused() throws {
        let port = try TCPProbe.freePort()
        #expect {
            _ = try RedisConnection.connect(try configuration("127.0.0.1:\(port)"))
        } throws: { error in
            let error = error as? RedisError
            return error?.kind == .connect && error?.message.contains("connection refused") == true
        }
    }

    @Test("a server killed under an open connection is a closed-connection error, and later calls fail fast")
    func serverKilled() async throws {
        let redis = try await RedisServerFixture()
        defer { redis.stop() }
        let connection = try RedisConnection.connect(try configuration(redis.address))
        redis.stop()
        #expect {
            _ = try connection.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.kind == .closed
        }
        #expect {
            _ = try connection.command(["PING"])
        } throws: { error in
            (error as? RedisError)?.kind == .closed
        }
    }
}

@Suite("RedisConnection against misbehaving servers")
struct MisbehavingServerTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var script: ScriptedTCPServer.Script
        var kind: RedisError.Kind
        var message: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "an HTTP server", script: .reply(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8), close: true),
             kind: .protocolViolation, message: "expected a RESP type byte (one of + - : $ * _ # , ( ! = % ~ > |), saw \"HTTP/1.1"),
        Case(name: "a reply cut mid-frame, then close", script: .reply(Array("$10\r\nPON".utf8), close: true),
             kind: .closed, message: "server closed the connection after 0 of 1 replies, in the middle of a reply"),
        Case(name: "a server that closes at once", script: .reply([], close: true),
             kind: .closed, message: "server closed the connection after 0 of 1 replies"),
        Case(name: "a server that never answers", script: .silent,
             kind: .timeout, message: "handshake: no reply within"),
        Case(name: "a reply cut mid-frame, then silence", script: .reply(Array("*2\r\n:1\r\n".utf8), close: false),
             kind: .timeout, message: "received 0 of 1 replies, stalled in the middle of a reply"),
        Case(name: "a server still loading its dataset",
             script: .reply(Array("-LOADING Redis is loading the dataset in memory\r\n".utf8), close: false),
             kind: .server, message: "server is still loading its dataset: LOADING Redis is loading the dataset in memory"),
        Case(name: "a server that answers PING with something else", script: .reply(Array(":1\r\n".utf8), close: false),
             kind: .protocolViolation, message: "expected +PONG in reply to PING, saw integer 1"),
        Case(name: "a server with extra bytes after the reply", script: .reply(Array("+PONG\r\n+EXTRA\r\n".utf8), close: false),
             kind: .protocolViolation, message: "unexpected bytes after the last of 1 replies"),
    ]

    /// A server that echoes what it was sent into its error reply: a password with CR/LF comes back in pieces, on
    /// the one line an error reply can hold, and no piece may reach the message kverify prints.
    @Test("a server echoing a password with CR/LF in pieces: no piece of it in the error")
    func echoedPasswordPieces() async throws {
        let password = "first-half\r\nsecond-half\tthird fourth"
        let echo = Array("-ERR unknown command 'first-half', with args beginning with: 'second-half' 'third' 'fourth'\r\n+PONG\r\n".utf8)
        try await ScriptedTCPServer.with(.reply(echo, close: false)) { server in
            let configuration = RedisConnection.Configuration(
                endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), credentials: RedisCredentials(password: password),
                connectTimeout: .seconds(5), operationTimeout: .milliseconds(500))
            #expect {
                _ = try RedisConnection.connect(configuration)
            } throws: { error in
                let text = "\(error)"
                if ["first-half", "second-half", "third", "fourth"].contains(where: text.contains) { Issue.record("leaked: \(text)") }
                return text.contains("AUTH as user 'default' failed: ERR unknown command '(password hidden)', with args beginning with: "
                                     + "'(password hidden)' '(password hidden)' '(password hidden)'")
            }
        }
    }

    @Test("each misbehaviour is a precise error, never a hang", arguments: cases)
    func misbehaviour(_ testCase: Case) async throws {
        try await ScriptedTCPServer.with(testCase.script) { server in
            let configuration = RedisConnection.Configuration(
                endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port),
                connectTimeout: .seconds(5), operationTimeout: .milliseconds(500))
            #expect {
                _ = try RedisConnection.connect(configuration)
            } throws: { error in
                guard let error = error as? RedisError else { return false }
                let matches = error.kind == testCase.kind && error.message.contains(testCase.message)
                if !matches { Issue.record("got \(error.kind): \(error.message)") }
                return matches && error.description.hasPrefix("redis 127.0.0.1:\(server.port): ")
            }
        }
    }
}
