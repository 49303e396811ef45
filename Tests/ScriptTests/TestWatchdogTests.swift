import Foundation
import KVerifyTestSupport
import Processes
import Testing

/// scripts/test_watchdog.py, which `make test` runs `swift test` under: a stalled run ends with exit 1 and, last in
/// its output (a CI log is often shown by its tail), exactly the tests that started and did not end.
@Suite struct TestWatchdogTests {
    static let script = RepositoryPaths.root.appendingPathComponent("scripts/test_watchdog.py").path

    /// Runs the watchdog over a fake test command printing `lines` in Swift Testing's format, then `tail`.
    func watch(_ lines: [String], then tail: String, stall: Int) async throws -> ProcessRunner.Result {
        let printed = lines.map { "printf '%s\\n' '\($0)'" }.joined(separator: "; ")
        return try await ProcessRunner.run(
            "python3", arguments: [Self.script, "--stall", String(stall), "--", "bash", "-c", "\(printed); \(tail)"],
            environment: ProcessInfo.processInfo.environment.merging(["PATH": "/usr/bin:/bin"]) { $1 }, timeout: .seconds(60))
    }

    @Test("a stalled run exits 1 naming only the tests that did not end, a parameterized one included, last in the output")
    func stalledRun() async throws {
        let result = try await watch([
            "◇ Test \"stuck\" started.",
            "◇ Test \"cases\" started.",
            "◇ Test case passing 1 argument x → 1 to \"cases\" started.",
            "✔ Test \"cases\" with 2 test cases passed after 0.1 seconds.",
            "◇ Test \"failing\" started.",
            "✘ Test \"failing\" recorded an issue at X.swift:1:1: Expectation failed: (a → 1) == 2",
            "✘ Test \"failing\" failed after 0.2 seconds with 1 issue.",
            "◇ Test \"stuck too\" started.",
        ], then: "sleep 50", stall: 1)
        let output = String(decoding: result.stdout, as: UTF8.self)
        #expect(!result.timedOut && result.exitCode == 1, "\(output)")
        let tail = try #require(output.components(separatedBy: "test(s) started and not ended").last, "\(output)")
        #expect(output.contains("--- 2 test(s) started and not ended"), "\(output)")
        #expect(tail.contains("\"stuck\" (running") && tail.contains("\"stuck too\" (running"), "\(tail)")
        #expect(!tail.contains("\"cases\"") && !tail.contains("\"failing\""), "\(tail)")
    }

    @Test("a run that ends passes its exit status through and says nothing of a stall")
    func endedRun() async throws {
        let result = try await watch(["◇ Test \"a\" started.", "✔ Test \"a\" passed after 0.1 seconds."], then: "exit 3", stall: 30)
        let output = String(decoding: result.stdout, as: UTF8.self)
        #expect(result.exitCode == 3, "\(output)")
        #expect(!output.contains("test watchdog"), "\(output)")
    }
}
