import Foundation
import Processes
import KVerifyTestSupport
import Testing

/// Issue #18: inputs an adversarial pass found that crashed, hung or gave the wrong exit code.
@Suite("Hardening (issue #18), run as a process")
struct HardeningTests {
    @Test("a directory given as --file, or on standard input (metrics and -f -), is exit 2 naming it, not a crash")
    func directoryInput() async throws {
        let directory = FileManager.default.temporaryDirectory.path
        let file = try await KVerifyRun.run(["metrics", "--file", directory], timeout: .seconds(30))
        #expect(file.status == 2, "\(file.stdout)\(file.stderr)")
        #expect(file.stdout.contains("FAIL input.readable [\(directory)]"), "\(file.stdout)")
        #expect(file.stdout.contains("Is a directory"), "\(file.stdout)")

        let stdin = try await runWithStdin(["metrics", "--file", "-"], from: directory)
        #expect(stdin.status == 2, "\(stdin.stdout)")
        #expect(stdin.stdout.contains("FAIL input.readable [standard input]"), "\(stdin.stdout)")

        // Manifests from standard input (`-f -`), read before any cluster is contacted.
        let manifests = try await runWithStdin(["daemonset", "-f", "-", "--sim"], from: directory)
        #expect(manifests.status == 2, "\(manifests.stdout)")
        #expect(manifests.stdout.contains("-f -: standard input is a directory"), "\(manifests.stdout)")
    }

    @Test("a duration too large for any deadline is exit 2 naming the option, on every duration option", arguments: [
        ["metrics", "--file", "-", "--timeout", "1e17s"],
        ["redis", "--addr", "127.0.0.1:1", "--timeout", "1e17s"],
        ["redis", "--addr", "127.0.0.1:1", "--expect-expiry", "--expiry-timeout", "1e17s"],
        ["daemonset", "--timeout", "1e17s"],
        ["sidecar", "--timeout", "8d"],
    ])
    func hugeDuration(arguments: [String]) async throws {
        let run = try await KVerifyRun.run(arguments, stdin: [], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("'\(arguments.last!)' is invalid for '\(arguments[arguments.count - 2])"), "\(run.stderr)")
    }

    @Test("a TTL so large that TTL-derived deadlines would overflow is exit 2", arguments: [
        ["redis", "--addr", "127.0.0.1:1", "--expect-expiry", "--ttl", "9223372036854775807"],
        ["daemonset", "--redis-ttl", "9223372036854775807"],
    ])
    func hugeTTL(arguments: [String]) async throws {
        let run = try await KVerifyRun.run(arguments, stdin: [], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("at most 31536000"), "\(run.stderr)")
    }

    @Test("--timeout below a millisecond is still a deadline: a server that stalls after its headers is exit 3")
    func subMillisecondTimeout() async throws {
        let headers = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\ng 1\n".utf8)
        try await ScriptedTCPServer.with(.reply(headers, close: false)) { server in
            let run = try await KVerifyRun.run(["metrics", "--url", "http://\(server.address)/metrics", "--timeout", "0.0001s"],
                                               timeout: .seconds(30))
            #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains("FAIL scrape.reachable [http://\(server.address)/metrics]"), "\(run.stdout)")
        }
    }

    /// libcurl stopped at the deadline, but the bytes it had queued faster than the parser goes kept the parse going
    /// 14 s past a 1 s --timeout (third adversarial pass), and past any bound with a large --max-bytes.
    @Test("--timeout bounds a body that never ends, from a server faster than the parser: exit 3 naming the deadline")
    func endlessBody() async throws {
        let head = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\r\n".utf8)
        let chunk = Array(String(repeating: "endless_total{shard=\"a\"} 1\n", count: 2_000).utf8)
        try await ScriptedTCPServer.with(.endless(head: head, chunk: chunk)) { server in
            // The old code was still parsing when the harness's 120 s limit killed it.
            let run = try await KVerifyRun.run(["metrics", "--url", "http://\(server.address)/metrics", "--timeout", "1s",
                                                "--max-bytes", "2000000000"], timeout: .seconds(120))
            #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains("FAIL scrape.reachable [http://\(server.address)/metrics]"), "\(run.stdout)")
            #expect(run.stdout.contains("the body had not ended"), "\(run.stdout)")
        }
    }

    @Test("--timeout bounds reading standard input: a writer that stalls ends at the deadline with exit 3")
    func stdinTimeout() async throws {
        let run = try await KVerifyRun.run(["metrics", "--file", "-", "--timeout", "1s"], stdin: Array("g 1\n".utf8),
                                           timeout: .seconds(30), keepStdinOpen: true)
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("FAIL input.readable [standard input] expected the end of the input within --timeout"), "\(run.stdout)")
        #expect(run.stdout.contains("observed 4 bytes, then nothing more before the deadline"), "\(run.stdout)")
    }

    @Test("--timeout bounds reading manifests from standard input (-f -): a writer that never ends its input is exit 3, before any cluster")
    func manifestStdinTimeout() async throws {
        let run = try await KVerifyRun.run(["daemonset", "-f", "-", "--sim", "--timeout", "1s"], stdin: Array("apiVersion: v1\n".utf8),
                                           timeout: .seconds(30), keepStdinOpen: true)
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("-f -: standard input had not ended by the deadline (15 bytes read) (--timeout 1s)"), "\(run.stderr)")
        #expect(!run.stderr.contains("simulated cluster"), "no sim was started: \(run.stderr)")
    }

    @Test("--timeout bounds a FIFO nobody opens for writing: exit 3 at the deadline, not a wait in open(2)")
    func fifoTimeout() async throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-fifo-\(UUID().uuidString.prefix(8))")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(at: fifo) }
        let run = try await KVerifyRun.run(["metrics", "--file", fifo.path, "--timeout", "1s"], stdin: [], timeout: .seconds(30))
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("FAIL input.readable [\(fifo.path)] expected the end of the input within --timeout"), "\(run.stdout)")
        #expect(run.stdout.contains("observed 0 bytes, then nothing more before the deadline"), "\(run.stdout)")
    }

    // MARK: Secrets in output
    // MARK: Secrets in output

    static func kubeconfig(server: String, user: String = "    token: tok-9f8e7d6c5b4a\n", extraCluster: String = "") throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-hard-kc-\(UUID().uuidString.prefix(8))")
        try """
            apiVersion: v1
            kind: Config
            clusters:
            - name: c
              cluster:
                server: \(server)
            \(extraCluster)users:
            - name: u
              user:
            \(user)contexts:
            - name: x
              context: {cluster: c, user: u}
            current-context: x

            """.write(to: file, atomically: false, encoding: .utf8)
        return file
    }

    static func httpReply(status: String, contentType: String, body: String) -> [UInt8] {
        Array("HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
    }

    @Test("an API server echoing the bearer token in its 401 or 403 Status: the token is in no output",
          arguments: ["text", "json", "junit"], [(401, "Unauthorized"), (403, "Forbidden")])
    func tokenEchoed(output: String, refusal: (code: Int, reason: String)) async throws {
        let status = #"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"\#(refusal.reason)","code":\#(refusal.code),"#
            + #""message":"\#(refusal.reason): header Authorization: Bearer tok-9f8e7d6c5b4a; token tok-9f8e7d6c5b4a unknown"}"#
        let run = try await Self.preflight(answering: Self.httpReply(status: "\(refusal.code) \(refusal.reason)", contentType: "application/json", body: status),
                                           output: output)
        // An HTTP error status from the API server itself is exit 3 (README, exit codes).
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(!(run.stdout + run.stderr).contains("tok-9f8e7d6c5b4a"), "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("\(refusal.reason) (\(refusal.code))"), "\(run.stdout)")
    }

    /// `kverify preflight` against a server that answers every request with `reply`, as user u with token
    /// tok-9f8e7d6c5b4a.
    static func preflight(answering reply: [UInt8], output: String) async throws -> KVerifyRun {
        try await ScriptedTCPServer.with(.reply(reply, close: true)) { server in
            let kubeconfig = try Self.kubeconfig(server: "http://\(server.address)")
            defer { try? FileManager.default.removeItem(at: kubeconfig) }
            return try await KVerifyRun.run(["preflight", "--kubeconfig", kubeconfig.path, "--output", output], timeout: .seconds(60))
        }
    }

    @Test("a server answering /version with 200 and a body echoing the bearer token: the token is in no output", arguments: ["text", "json"])
    func tokenEchoedInBody(output: String) async throws {
        let run = try await Self.preflight(answering: Self.httpReply(status: "200 OK", contentType: "application/json", body: "token was tok-9f8e7d6c5b4a ok"),
                                           output: output)
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(!(run.stdout + run.stderr).contains("tok-9f8e7d6c5b4a"), "\(run.stdout)\(run.stderr)")
        #expect((run.stdout + run.stderr).contains("token was REDACTED ok"), "\(run.stdout)\(run.stderr)")
    }

    @Test("a password in --url is in no output: not in the finding, the target or the verdict", arguments: ["text", "json", "junit"])
    func urlPassword(output: String) async throws {
        let url = "http://scraper:pw-31415926@127.0.0.1:\(try TCPProbe.freePort())/metrics"
        let run = try await KVerifyRun.run(["metrics", "--url", url, "--output", output], timeout: .seconds(30))
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(!(run.stdout + run.stderr).contains("pw-31415926"), "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("scraper:REDACTED@127.0.0.1"), "\(run.stdout)")
    }

    @Test("a Redis key name with terminal escapes is printed escaped, never raw")
    func redisKeyEscapes() async throws {
        try await RedisServerFixture.with { redis in
            let key = "gunicorn:\u{1B}]0;owned\u{07}\u{1B}[2J"
            let set = try await ProcessRunner.run("/usr/bin/redis-cli", arguments: ["-p", String(redis.port), "SET", key, "1"],
                                                  environment: ProcessInfo.processInfo.environment, timeout: .seconds(30))
            try #require(set.succeeded, "redis-cli SET: \(set.stderrExcerpt())")
            let run = try await KVerifyRun.run(["redis", "--addr", redis.address], timeout: .seconds(60))
            #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
            #expect(!run.stdout.contains("\u{1B}") && !run.stdout.contains("\u{07}"), "\(run.stdout.debugDescription)")
            #expect(run.stdout.contains("gunicorn:\\x1b]0;owned\\x07\\x1b[2J"), "\(run.stdout)")
        }
    }

    // MARK: Exit codes

    @Test("--env naming no container, or an empty one, is exit 2 listing the app's containers", arguments: [
        (["daemonset", "--env", "nosuchcontainer:X=1"], "--env 'nosuchcontainer:X=1': no container 'nosuchcontainer' in the app pods of daemonset.yaml; they have "),
        (["sidecar", "--env", "nosuchcontainer:X=1"], "no container 'nosuchcontainer' in the app pods of sidecar.yaml; they have "),
        (["daemonset", "--env", ":X=1"], "--env ':X=1': the container name before ':' is empty"),
    ])
    func envContainer(arguments: [String], message: String) async throws {
        // The check runs on the manifests, before any cluster is contacted.
        let run = try await KVerifyRun.run(arguments + ["--kubeconfig", "/nonexistent"], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains(message), "\(run.stderr)")
        if message.contains("they have") { #expect(run.stderr.contains("app"), "\(run.stderr)") }
    }

    /// A fourth adversarial pass: usage errors quoted the user's text raw (ESC, BEL), and a path with an escape was
    /// accepted and failed minutes later as an unreachable scrape.
    @Test("usage errors quote control characters escaped; a --metrics-path with one is exit 2 at once", arguments: [
        (["daemonset", "--nodes", "2", "--env=X\u{1B}[31mRED"], "--env 'X\\x1b[31mRED'"),
        (["daemonset", "--namespace=a\u{1B}]0;pwn\u{07}"], "--namespace 'a\\x1b]0;pwn\\x07'"),
        (["daemonset", "--metrics-path=/m\u{1B}[2J"], "no spaces or control characters"),
        (["sidecar", "--path=/a\tb"], "no spaces or control characters"),
    ] as [([String], String)])
    func usageErrorEscapes(arguments: [String], message: String) async throws {
        let run = try await KVerifyRun.run(arguments, timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains(message), "\(run.stderr.debugDescription)")
        #expect(!run.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(run.stderr.debugDescription)")
    }

    @Test("--url with a scheme other than http(s) is a usage error (exit 2)",
          arguments: ["ftp://127.0.0.1/metrics", "file:///etc/passwd", "127.0.0.1:9091/metrics", "ftp://u:pw-27182818@127.0.0.1/m"])
    func urlScheme(url: String) async throws {
        let run = try await KVerifyRun.run(["metrics", "--url", url], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("expected an http:// or https:// URL"), "\(run.stderr)")
        #expect(!run.stderr.contains("pw-27182818"), "\(run.stderr)")
    }

    @Test("--url that cannot be parsed (an unclosed IPv6 bracket, no host, a port past 65535) is a usage error (exit 2), not an unreachable server",
          arguments: [("http://[::1/metrics", "not a URL whose host can be read"), ("http:///metrics", "not a URL whose host can be read"),
                      ("https://u:pw-31415926@[fe80::1/m", "not a URL whose host can be read"),
                      ("http://127.0.0.1:99999/metrics", "port 99999 is not in 1…65535"),
                      ("http://u:pw-31415926@[::1]:99999/m", "port 99999 is not in 1…65535")])
    func urlUnparsable(url: String, reason: String) async throws {
        let run = try await KVerifyRun.run(["metrics", "--url", url], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains(reason), "\(run.stderr)")
        #expect(!run.stderr.contains("pw-31415926"), "\(run.stderr)")
    }

    @Test("a missing tokenFile is exit 2 like a missing certificate file, on both backends", arguments: ["api", "kubectl"])
    func missingTokenFile(backend: String) async throws {
        let kubeconfig = try Self.kubeconfig(server: "https://127.0.0.1:1", user: "    tokenFile: /nonexistent/kverify-token\n")
        defer { try? FileManager.default.removeItem(at: kubeconfig) }
        let run = try await KVerifyRun.run(["preflight", "--kubeconfig", kubeconfig.path, "--backend", backend], timeout: .seconds(60))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("tokenFile of user 'u'"), "\(run.stderr)")
        #expect(run.stderr.contains("/nonexistent/kverify-token"), "\(run.stderr)")
    }

    @Test("a kubeconfig pointing at an HTTP server that is not Kubernetes (404 for /version) is exit 3, on both backends",
          arguments: ["api", "kubectl"])
    func notKubernetes(backend: String) async throws {
        // The test server answers every path under /status/404 with a plain-text 404, as many web servers would.
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let kubeconfig = try Self.kubeconfig(server: server.url("/status/404"))
        defer { try? FileManager.default.removeItem(at: kubeconfig) }
        let run = try await KVerifyRun.run(["preflight", "--kubeconfig", kubeconfig.path, "--backend", backend], timeout: .seconds(60))
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("answers GET /version with 404, which no Kubernetes API server does"), "\(run.stdout)")
    }

    @Test("an unreachable Redis with --output json|junit still prints a report carrying the error, exit 3", arguments: ["json", "junit"])
    func redisUnreachableReport(output: String) async throws {
        let port = try TCPProbe.freePort()
        let run = try await KVerifyRun.run(["redis", "--addr", "127.0.0.1:\(port)", "--output", output, "--timeout", "5s"], timeout: .seconds(60))
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        if output == "json" {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            #expect(object["verdict"] as? String == "fail")
            let findings = try #require(object["findings"] as? [[String: Any]])
            #expect(findings.map { $0["checkID"] as? String } == ["redis.reachable"])
            #expect(findings.first?["subject"] as? String == "redis 127.0.0.1:\(port) db 0")
        } else {
            #expect(run.stdout.contains("<testcase classname=\"redis.reachable\" name=\"redis 127.0.0.1:\(port) db 0\">"), "\(run.stdout)")
            #expect(run.stdout.contains("<failure message="), "\(run.stdout)")
        }
    }

    // MARK: YAML bombs

    /// "Billion laughs" (9^levels scalars from ~550 bytes), as a value or, nested, as a mapping key.
    static func laughs(levels: Int = 9, asKey: Bool = false, prefix: String = "") -> String {
        let names = (0..<levels).map { "l\($0)" }
        var lines = ["\(names[0]): &\(names[0]) [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        for (previous, name) in zip(names, names.dropFirst()) {
            lines.append("\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]")
        }
        lines.append(asKey ? "? *\(names.last!)\n: value" : "all: *\(names.last!)")
        return prefix + lines.joined(separator: "\n") + "\n"
    }

    @Test("YAML alias bombs are refused with exit 2 naming the file and the limit: manifests, rules files, kubeconfigs",
          arguments: ["manifest", "manifest-key", "rules", "rules-key", "kubeconfig", "kubeconfig-key"])
    func yamlBomb(input: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-bomb-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let asKey = input.hasSuffix("-key")
        // Keys of nested aliases hang Yams' duplicate-key check past 9 levels; values exhaust memory at 9.
        let bomb = Self.laughs(levels: asKey ? 12 : 9, asKey: asKey)
        let file: URL
        let arguments: [String]
        switch input.split(separator: "-").first! {
        case "manifest":
            file = directory.appendingPathComponent("daemonset.yaml")
            try "apiVersion: v1\nkind: Service\nmetadata: {name: redis}\n".write(to: directory.appendingPathComponent("redis.yaml"), atomically: false, encoding: .utf8)
            try ("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\n" + bomb).write(to: file, atomically: false, encoding: .utf8)
            arguments = ["daemonset", "--manifests", directory.path, "--kubeconfig", "/nonexistent"]
        case "rules":
            file = directory.appendingPathComponent("rules.yaml")
            try ("rules: []\n" + bomb).write(to: file, atomically: false, encoding: .utf8)
            arguments = ["metrics", "--file", "-", "--rules", file.path]
        default:
            file = directory.appendingPathComponent("kubeconfig")
            try ("apiVersion: v1\nkind: Config\n" + bomb).write(to: file, atomically: false, encoding: .utf8)
            arguments = ["preflight", "--kubeconfig", file.path]
        }
        let run = try await KVerifyRun.run(arguments, stdin: Array("g 1\n".utf8), timeout: .seconds(60))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("\(file.path) is refused: line "), "\(run.stderr)")
        #expect(run.stderr.contains("limit of 1000000 nodes"), "\(run.stderr)")
    }

    /// Runs kverify through a shell whose standard input is redirected from `path`.
    /// Runs kverify with standard input redirected from `path` (a directory, say); stdout and stderr together.
    func runWithStdin(_ arguments: [String], from path: String) async throws -> (status: Int32, stdout: String) {
        let script = "exec \"$0\" \"$@\" < \"$KVERIFY_STDIN\""
        let result = try await ProcessRunner.run(
            "/bin/sh", arguments: ["-c", script, RepositoryPaths.kverifyExecutable.path] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(["KVERIFY_STDIN": path]) { $1 }, timeout: .seconds(60))
        if result.timedOut { throw FixtureError("kverify \(arguments.joined(separator: " ")) < \(path) did not finish within 60 s") }
        return (result.status, String(decoding: result.stdout + result.stderr, as: UTF8.self))
    }
}
