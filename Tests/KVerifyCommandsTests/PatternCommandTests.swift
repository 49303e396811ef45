import Foundation
import KVerifyTestSupport
import Testing

/// `kverify daemonset` / `kverify sidecar` run as a user runs them: the built executable.
@Suite("kverify daemonset and sidecar (CLI)")
struct PatternCommandTests {
    static func report(_ run: KVerifyRun) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "stdout: \(run.stdout)\nstderr: \(run.stderr)")
    }

    @Test("--help documents the phases, the fail-fast reasons and the exit codes", arguments: ["daemonset", "sidecar"])
    func help(command: String) async throws {
        let run = try await KVerifyRun.run([command, "--help"], timeout: .seconds(30))
        #expect(run.status == 0)
        for text in ["--nodes", "--sim", "--chart", "--keep", "--redis-addr", "CrashLoopBackOff", "EXIT CODES", "kverify.io/run"] {
            #expect(run.stdout.contains(text), "\(text) missing from \(command) --help")
        }
    }

    @Test("--chart without helm on PATH is a usage error that says helm is required")
    func chartWithoutHelm() async throws {
        let run = try await KVerifyRun.run(["daemonset", "--chart", "charts/kverify-demo", "--sim"], environment: ["PATH": "/usr/bin/nonexistent"],
                                           timeout: .seconds(30))
        #expect(run.status == 2)
        #expect(run.stderr.contains("--chart charts/kverify-demo needs the helm binary on PATH (not found)"), "\(run.stderr)")
    }

    @Test("bad flags exit 2 naming the flag", arguments: [
        (["sidecar", "--env", "NOEQUALS"], "--env 'NOEQUALS': expected [container:]NAME=VALUE"),
        (["sidecar", "--namespace", "Bad_Prefix"], "--namespace 'Bad_Prefix'"),
        (["daemonset", "--redis-addr", "nohost"], "--redis-addr"),
        (["daemonset", "--nodes", "0"], "--nodes must be between 1 and 250"),
    ])
    func badFlags(arguments: [String], message: String) async throws {
        let run = try await KVerifyRun.run(arguments, timeout: .seconds(30))
        #expect(run.status == 2)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test("an unreachable cluster is exit 3, and nothing is attempted after preflight")
    func unreachable() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-pattern-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try TCPProbe.freePort()
        let kubeconfig = directory.appendingPathComponent("kubeconfig")
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "http://127.0.0.1:\(port)"}}]
            users: [{name: u, user: {token: t}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """.write(to: kubeconfig, atomically: true, encoding: .utf8)
        let run = try await KVerifyRun.run(["daemonset", "--kubeconfig", kubeconfig.path, "--output", "json"], timeout: .seconds(60))
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        let report = try Self.report(run)
        let phases = (report["phases"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(phases == ["preflight", "cleanup"])
    }
}
