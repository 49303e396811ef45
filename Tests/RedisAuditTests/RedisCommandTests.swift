import Foundation
import KVerifyTestSupport
import RESP
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `kverify redis` run as a subprocess: exit codes and output are the interface.
@Suite("kverify redis (CLI)", .serialized)
struct RedisCommandTests {
    @Test("the real exporter's keys verify, and expiry is observed: exit 0")
    func verifiesExporter() async throws {
        try await GunicornExporterFixture.withRedis(ttlSeconds: 5) { exporter, redis in
            try await exporter.sendTraffic(20)
            let result = try await runKVerify([
                "redis", "--addr", redis.address, "--ttl", "5", "--expect-expiry", "--expiry-timeout", "40s", "--verbose",
            ])
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("PASS redis.expiry.all-expired [gunicorn:*]"))
            #expect(result.stdout.contains("PASS redis.ttl.missing [gunicorn:*] expected every key to have a TTL, observed all"))
            #expect(result.stdout.contains("phases: connect"))
            #expect(result.stdout.contains("VERIFIED"))
        }
    }

    @Test("REDIS_TTL_DISABLED=true: exit 1 and the report counts the keys without TTL")
    func ttlDisabled() async throws {
        try await GunicornExporterFixture.withRedis(ttlDisabled: true) { exporter, redis in
            try await exporter.sendTraffic(10)
            let result = try await runKVerify(["redis", "--addr", redis.address])
            #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("FAIL redis.ttl.missing [gunicorn:*]"))
            #expect(result.stdout.range(of: #"observed \d+ keys have no TTL \(PTTL -1\): gunicorn:"#, options: .regularExpression) != nil)
            #expect(result.stdout.contains("FAILED: redis \(redis.address) db 0 prefix gunicorn"))
        }
    }

    @Test("JSON output carries verdict and findings")
    func json() async throws {
        try await RedisServerFixture.with { redis in
            try Keyspace.run(Keyspace.healthy(), on: try Keyspace.connect(redis))
            let result = try await runKVerify(["redis", "--addr", redis.address, "--output", "json"])
            #expect(result.status == 0, "\(result.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(object?["verdict"] as? String == "pass")
            let findings = object?["findings"] as? [[String: Any]] ?? []
            #expect(findings.contains { $0["checkID"] as? String == "redis.meta.unpaired" && $0["status"] as? String == "pass" })
        }
    }

    @Test("--ttl Int64.max with a key holding a TTL: no trap, a usage error naming the limit (exit 2); a year still audits")
    func largestTTL() async throws {
        try await RedisServerFixture.with { redis in
            try Keyspace.run(Keyspace.healthy(), on: try Keyspace.connect(redis))
            let tooLarge = try await runKVerify(["redis", "--addr", redis.address, "--ttl", "9223372036854775807", "--verbose"])
            #expect(tooLarge.status == 2, "\(tooLarge.stdout)\(tooLarge.stderr)")
            #expect(tooLarge.stderr.contains("at most 31536000 (a year)"), "\(tooLarge.stderr)")
            let year = try await runKVerify(["redis", "--addr", redis.address, "--ttl", "31536000", "--verbose"])
            #expect(year.status == 0, "\(year.stdout)\(year.stderr)")
            #expect(year.stdout.contains("PASS redis.ttl.above-configured [gunicorn:*] expected TTL ≤ 31536000 s, observed none above"),
                    "\(year.stdout)")
        }
    }

    @Test("a wrong password exits 3 naming the server and WRONGPASS, never the password")
    func wrongPassword() async throws {
        try await RedisServerFixture.with(password: "the-real-one") { redis in
            let result = try await runKVerify(
                ["redis", "--addr", redis.address, "--password-env", "KV_TEST_REDIS_PW"],
                environment: ["KV_TEST_REDIS_PW": "not-the-password"])
            #expect(result.status == 3)
            #expect(result.stderr.contains("kverify: error: redis \(redis.address): AUTH as user 'default' was rejected: WRONGPASS"))
            #expect(!(result.stdout + result.stderr).contains("not-the-password"))

            let user = try await runKVerify(
                ["redis", "--addr", redis.address, "--password-env", "KV_TEST_REDIS_PW", "--user", "default"],
                environment: ["KV_TEST_REDIS_PW": "the-real-one"])
            #expect(user.status == 1, "empty keyspace: presence fails; \(user.stderr)")

            let none = try await runKVerify(["redis", "--addr", redis.address])
            #expect(none.status == 3)
            #expect(none.stderr.contains("NOAUTH") && none.stderr.contains("--password-env"))
        }
    }

    @Test("usage errors exit 2 with the reason", arguments: [
        (["redis", "--addr", "127.0.0.1:6379", "--password-env", "KV_TEST_UNSET_VARIABLE"],
         "environment variable KV_TEST_UNSET_VARIABLE is not set"),
        (["redis", "--addr", "localhost"], "has no port"),
        (["redis", "--addr", "127.0.0.1:6379", "--user", "auditor"], "--user auditor needs --password-env VAR"),
        (["redis", "--addr", "127.0.0.1:6379", "--ttl", "0"], "--ttl 0: expected seconds > 0"),
        (["redis", "--addr", "127.0.0.1:6379", "--expiry-timeout", "soon"], "soon"),
        (["redis", "--addr", "127.0.0.1:6379", "--password", "x"], "--password"),
    ])
    func usage(_ arguments: [String], message: String) async throws {
        let result = try await runKVerify(arguments)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("nothing listening, or not a Redis server: exit 3 with what was seen")
    func unreachable() async throws {
        let port = try TCPProbe.freePort()
        let refused = try await runKVerify(["redis", "--addr", "127.0.0.1:\(port)"])
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("redis 127.0.0.1:\(port): cannot connect: connection refused"))

        try await ScriptedTCPServer.with(.reply(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8), close: true)) { server in
            let http = try await runKVerify(["redis", "--addr", server.address, "--timeout", "2s"])
            #expect(http.status == 3)
            #expect(http.stderr.contains("is this a Redis server?"), "\(http.stderr)")
        }
        try await ScriptedTCPServer.with(.silent) { server in
            let silent = try await runKVerify(["redis", "--addr", server.address, "--timeout", "500ms"])
            #expect(silent.status == 3)
            #expect(silent.stderr.contains("no reply within"), "\(silent.stderr)")
        }
    }

    /// A server answering every SCAN with cursor 7 and no keys, and every other command as a healthy one would.
    static let scanLoopServer = """
        import socket, sys
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        print(server.getsockname()[1], flush=True)
        while True:
            conn, _ = server.accept()
            reader = conn.makefile("rb")
            try:
                while True:
                    line = reader.readline()
                    if not line:
                        break
                    args = []
                    for _ in range(int(line[1:])):
                        length = int(reader.readline()[1:])
                        args.append(reader.read(length + 2)[:-2])
                    command = args[0].upper()
                    if command == b"SCAN":
                        conn.sendall(b"*2\\r\\n$1\\r\\n7\\r\\n*0\\r\\n")
                    elif command == b"DBSIZE":
                        conn.sendall(b":0\\r\\n")
                    elif command == b"PING":
                        conn.sendall(b"+PONG\\r\\n")
                    else:
                        conn.sendall(b"+OK\\r\\n")
            except Exception:
                pass
            conn.close()
        """

    @Test("a server whose SCAN cursor repeats (it would loop forever) is exit 3 naming the cursor, not a spin")
    func scanCursorLoop() async throws {
        let server = try ChildProcess(name: "scan-loop-redis", executable: URL(fileURLWithPath: "/usr/bin/python3"),
                                      arguments: ["-u", "-c", Self.scanLoopServer])
        defer { server.stop() }
        let deadline = ContinuousClock.now + .seconds(20)
        // The server prints its port, and nothing else, once it listens.
        func port() -> Int? { Int(server.logTail().trimmingCharacters(in: .whitespacesAndNewlines)) }
        while port() == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let listening = try #require(port(), "\(server.logTail())")
        let result = try await runKVerify(["redis", "--addr", "127.0.0.1:\(listening)", "--timeout", "2s"], timeout: .seconds(60))
        #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("SCAN returned cursor 7 a second time in one iteration"), "\(result.stderr)")
    }

    @Test("redis-server killed in the middle of the scan: exit 3, no hang")
    func killedMidScan() async throws {
        let redis = try await RedisServerFixture()
        defer { redis.stop() }
        let admin = try Keyspace.connect(redis)
        try Keyspace.load(pairs: 150_000, on: admin)
        var killed = false
        let result = try await runKVerify(["redis", "--addr", redis.address, "--timeout", "5s"]) { process in
            // Wait (with a deadline) until kverify is visibly auditing, then kill the server under it.
            let deadline = ContinuousClock.now + .seconds(30)
            while process.isRunning && ContinuousClock.now < deadline {
                let clients = try admin.command(["CLIENT", "LIST"]).string ?? ""
                let auditing = clients.split(separator: "\n").contains { line in
                    ["cmd=scan", "cmd=type", "cmd=pttl", "cmd=hgetall"].contains { line.contains($0) }
                }
                if auditing {
                    kill(redis.pid, SIGKILL)
                    killed = true
                    return
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        try #require(killed, "kverify finished before the server could be killed: \(result.stdout)")
        #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("redis \(redis.address): SCAN batch"), "\(result.stderr)")
        #expect(result.stderr.contains("closed the connection") || result.stderr.contains("reset the connection")
            || result.stderr.contains("write failed"), "\(result.stderr)")
    }
}
