import Foundation
import KVerifyTestSupport
import Testing

@Suite("kverify metrics, run as a process")
struct MetricsCommandTests {
    static let good = Array("""
        # HELP jobs_total Jobs done.
        # TYPE jobs_total counter
        jobs_total{queue="a"} 3
        # TYPE latency_seconds histogram
        latency_seconds_bucket{le="1"} 1
        latency_seconds_bucket{le="+Inf"} 2
        latency_seconds_count 2
        latency_seconds_sum 1.5

        """.utf8)

    static let inconsistent = Array("""
        # TYPE latency_seconds histogram
        latency_seconds_bucket{le="1"} 1
        latency_seconds_bucket{le="+Inf"} 2
        latency_seconds_count 3
        latency_seconds_sum 1.5

        """.utf8)

    @Test("--help documents options, profiles, the rules file and exit codes")
    func help() async throws {
        let run = try await KVerifyRun.run(["metrics", "--help"])
        #expect(run.status == 0)
        for text in ["--url", "--file", "--profile", "--rules", "--format", "--output", "--max-bytes", "--timeout",
                     "gunicorn", "RULES FILE", "EXIT CODES", "3  unreachable"] {
            #expect(run.stdout.contains(text), "help lacks \(text)")
        }
    }

    @Test("a consistent exposition on stdin verifies with exit 0")
    func stdinVerifies() async throws {
        let run = try await KVerifyRun.run(["metrics", "--file", "-"], stdin: Self.good)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("VERIFIED"))
    }

    @Test("an inconsistent histogram fails with exit 1 and names the series")
    func inconsistentFails() async throws {
        let run = try await KVerifyRun.run(["metrics", "--file", "-"], stdin: Self.inconsistent)
        #expect(run.status == 1)
        #expect(run.stdout.contains("FAIL exposition.histogram-consistent [latency_seconds] expected _count == +Inf bucket, observed _count 3, +Inf bucket 2"),
                "\(run.stdout)")
    }

    @Test("JSON and JUnit outputs carry the same verdict")
    func formats() async throws {
        let json = try await KVerifyRun.run(["metrics", "--file", "-", "--output", "json"], stdin: Self.inconsistent)
        #expect(json.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["verdict"] as? String == "fail")
        let junit = try await KVerifyRun.run(["metrics", "--file", "-", "--output", "junit"], stdin: Self.inconsistent)
        #expect(junit.status == 1)
        #expect(junit.stdout.contains("<failure message=\"expected _count == +Inf bucket"))
    }

    @Test("a rules file applies its own checks")
    func rulesFile() async throws {
        let rules = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-rules-\(UUID().uuidString).yaml")
        try "rules:\n  - id: jobs.many\n    metric: jobs_total\n    value: \">= 10\"\n    aggregate: sum\n".write(to: rules, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: rules) }
        let run = try await KVerifyRun.run(["metrics", "--file", "-", "--rules", rules.path], stdin: Self.good)
        #expect(run.status == 1)
        #expect(run.stdout.contains("FAIL jobs.many [jobs_total] expected sum >= 10, observed sum 3 over 1 series"), "\(run.stdout)")
    }

    /// Swift's Regex backtracks and ignores task cancellation: `(a+)+$` on 40 a's and a '!' runs for hours.
    @Test("a rule whose regex backtracks exponentially ends at --timeout with exit 2, naming the rule")
    func backtrackingRegex() async throws {
        let rules = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-rules-\(UUID().uuidString).yaml")
        try "rules:\n  - id: queue.name\n    metric: jobs_total\n    label: queue\n    matches: \"(a+)+$\"\n".write(to: rules, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: rules) }
        let exposition = "# TYPE jobs_total counter\njobs_total{queue=\"" + String(repeating: "a", count: 40) + "!\"} 3\n"
        // KVerifyRun's own deadline (120 s) fails the test if the command runs the regex to its end.
        let run = try await KVerifyRun.run(["metrics", "--file", "-", "--rules", rules.path, "--timeout", "2s"], stdin: Array(exposition.utf8),
                                           timeout: .seconds(120))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("FAIL rules.timeout [rule queue.name] expected the rules evaluated within --timeout (2.0 seconds), observed still evaluating rule queue.name after 2.0 seconds"),
                "\(run.stdout)")
    }

    @Test("usage errors exit 2 with a message", arguments: [
        (["metrics"], "exactly one of --url or --file"),
        (["metrics", "--url", "http://x", "--file", "f"], "exactly one of --url or --file"),
        (["metrics", "--file", "-", "--profile", "nginx"], "unknown profile 'nginx'"),
        (["metrics", "--file", "-", "--timeout", "soon"], "--timeout"),
        (["metrics", "--file", "-", "--output", "xml"], "--output"),
    ])
    func usage(arguments: [String], message: String) async throws {
        let run = try await KVerifyRun.run(arguments, stdin: [])
        #expect(run.status == 2)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test("a malformed rules file exits 2 naming file, line and column")
    func badRulesFile() async throws {
        let rules = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-rules-\(UUID().uuidString).yaml")
        try "rules:\n  - id: a\n    metric: m\n    valu: 1\n".write(to: rules, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: rules) }
        let run = try await KVerifyRun.run(["metrics", "--file", "-", "--rules", rules.path], stdin: Self.good)
        #expect(run.status == 2)
        #expect(run.stderr.contains("\(rules.path):4:5: rule 1: unknown key 'valu'"), "\(run.stderr)")
    }

    @Test("an unparseable file exits 2 with line:column, and JSON still reports it")
    func unparseable() async throws {
        let run = try await KVerifyRun.run(["metrics", "--file", "-", "--output", "json"], stdin: Array("up 1\nbad{ 1\n".utf8))
        #expect(run.status == 2)
        #expect(run.stdout.contains("\"checkID\" : \"exposition.parsed\""))
        #expect(run.stdout.contains("standard input:2:"))
    }

    @Test("a refused connection exits 3")
    func unreachable() async throws {
        let run = try await KVerifyRun.run(["metrics", "--url", "http://127.0.0.1:\(try TCPProbe.freePort())/metrics"])
        #expect(run.status == 3)
        #expect(run.stdout.contains("FAIL scrape.reachable"))
    }
}

@Suite("Every command documents itself")
struct HelpCommandTests {
    @Test("kverify --help lists the commands and exit codes")
    func root() async throws {
        let run = try await KVerifyRun.run(["--help"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("metrics"))
        #expect(run.stdout.contains("EXIT CODES"))
    }
}
