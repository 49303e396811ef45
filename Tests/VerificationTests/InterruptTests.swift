import Foundation
import KVerifyTestSupport
import KubeClient
import KubeSim
import SimFaults
import SimStore
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SimRuns {
    /// Ctrl-C during a run: kverify cancels the run and still deletes its namespace.
    @Suite("kverify interrupted")
    struct InterruptTests {
        @Test("SIGINT, SIGTERM or SIGHUP while waiting for the rollout: exit 1, run.interrupted, and the run namespace is deleted",
              arguments: [SIGINT, SIGTERM, SIGHUP])
        func interrupted(signal: Int32) async throws {
            var options = SimulatedCluster.Options(nodes: 2)
            // Readiness never comes within the test, so the run is surely inside the wait when the signal arrives.
            options.faults.slowReadiness = [.init(.init(container: "prometheus-exporter"), delay: .seconds(600))]
            try await SimulatedCluster.with(options: options) { sim in
                let child = try ChildProcess(name: "kverify-interrupt", executable: RepositoryPaths.kverifyExecutable,
                                             arguments: ["daemonset", "--kubeconfig", sim.kubeconfigPath, "--nodes", "2", "--namespace", "kvint"])
                defer { child.stop() }
                try await child.waitForLog(containing: "▸ wait", timeout: .seconds(60))
                let api = try SimSupport.api(sim)
                let namespaces = try await api.list(.namespaces, namespace: nil, options: ListOptions(labelSelector: "kverify.io/run"))
                #expect(namespaces.items.count == 1)
                let log = try await Self.interrupt(child, signal)
                #expect(child.exitCode == 1, "\(log)")
                #expect(log.contains("kverify: signal \(signal): stopping, cleaning up namespace kvint-"), "\(log)")
                #expect(log.contains("FAIL run.interrupted") && log.contains("interrupted (SIGINT/SIGTERM/SIGHUP or cancelled) during the wait phase"), "\(log)")
                #expect(Self.failures(log) == ["run.interrupted"], "\(log)")
                let left = try await api.list(.namespaces, namespace: nil, options: ListOptions(labelSelector: "kverify.io/run"))
                #expect(left.items.isEmpty, "namespaces left: \(left.items.count)")
            }
        }

        /// Ctrl-C while the lifecycle phase polls through exec and the API proxy: every request in flight ends with
        /// CancellationError, which must not be reported as the checks' failures.
        @Test("SIGINT in the middle of the lifecycle phase: run.interrupted is the only failure, and the namespace is deleted")
        func interruptedMidPhase() async throws {
            try await SimulatedCluster.with(options: .init(nodes: 2)) { sim in
                let child = try ChildProcess(name: "kverify-interrupt-late", executable: RepositoryPaths.kverifyExecutable,
                                             arguments: ["daemonset", "--kubeconfig", sim.kubeconfigPath, "--nodes", "2", "--namespace", "kvlate"])
                defer { child.stop() }
                try await child.waitForLog(containing: "▸ lifecycle", timeout: .seconds(240))
                try await Task.sleep(for: .seconds(2))
                let log = try await Self.interrupt(child, SIGINT)
                #expect(child.exitCode == 1, "\(log)")
                #expect(log.contains("interrupted (SIGINT/SIGTERM/SIGHUP or cancelled) during the lifecycle phase"), "\(log)")
                #expect(Self.failures(log) == ["run.interrupted"], "\(log)")
                #expect(log.components(separatedBy: "  lifecycle done in").count == 2, "the interrupted phase is reported once: \(log)")
                let api = try SimSupport.api(sim)
                let left = try await api.list(.namespaces, namespace: nil, options: ListOptions(labelSelector: "kverify.io/run"))
                #expect(left.items.isEmpty, "namespaces left: \(left.items.count)")
            }
        }

        /// Sends `signal` to the run, waits for it to end (90 s at most: cleanup included) and returns its log.
        static func interrupt(_ child: ChildProcess, _ signal: Int32) async throws -> String {
            kill(child.pid, signal)
            // kverify's cleanup allows the namespace's deletion 120 s (pods end within their grace periods): the test
            // waits that long and more before it calls the run hung (once, on a machine also running a 1,000-node sim,
            // 90 s was not enough).
            let deadline = ContinuousClock.now + .seconds(180)
            while child.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            return child.logTail(lines: 400)
        }

        /// The check ids of the FAIL lines of a human-readable report.
        static func failures(_ log: String) -> [String] {
            log.split(whereSeparator: \.isNewline).compactMap { line in
                guard let range = line.range(of: "FAIL ") else { return nil }
                return line[range.upperBound...].split(separator: " ").first.map(String.init)
            }
        }
    }
}
