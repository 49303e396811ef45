import Findings
import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import KubeSim
import SimFaults
import SimStore
import MetricRules
import PromText
import Testing
import Verification

extension SimRuns {
    /// `PatternRun` against the simulated cluster, used from Swift phase by phase as a library user would.
    @Suite("PatternRun on the simulated cluster")
    struct PatternRunSimTests {
        @Test("step by step: preflight, apply the DaemonSet, wait for one Ready pod per worker, clean up")
        func stepByStep() async throws {
            var options = SimulatedCluster.Options(nodes: 3)
            options.instantKubelet = true
            try await SimulatedCluster.with(options: options) { sim in
                let api = try SimSupport.api(sim)
                let run = PatternRun(api: api, options: .init(pattern: .daemonset, nodes: 3, manifests: try SimSupport.manifests(["daemonset.yaml"]),
                                                              runID: "step01", timeout: .seconds(60)))
                let preflight = try await run.preflight()
                #expect(preflight.filter { $0.status == .fail }.isEmpty, "\(preflight)")
                #expect(preflight.first { $0.checkID == "cluster.ready-nodes" }?.observed == "3 nodes: 3 Ready, 2 schedulable")
                #expect(preflight.filter { $0.checkID == "cluster.node" }.map(\.subject)
                        == ["node/kverify-sim-control-plane", "node/kverify-sim-worker", "node/kverify-sim-worker2"])

                try await run.createNamespace()
                let applied = try await run.apply()
                #expect(applied.namespace == "kverify-step01")
                #expect(applied.workloads == ["DaemonSet/gunicorn-prometheus-exporter-daemonset"])
                #expect(applied.appSelector == "app=gunicorn-prometheus-exporter,component=daemonset")

                let outcome = try await run.wait(applied)
                #expect(outcome.result == .ready)
                #expect(outcome.pods.compactMap(\.nodeName).sorted() == ["kverify-sim-worker", "kverify-sim-worker2"])
                #expect(outcome.pods.allSatisfy { $0.metadata.labels?["kverify.io/run"] == "step01" })
                let findings = await run.rolloutFindings(outcome, namespace: applied.namespace)
                #expect(findings.first { $0.checkID == "rollout.nodes-covered" }?.status == .pass)

                let targets = try await run.targets(applied)
                #expect(targets.count == 2)
                #expect(targets.map(\.keyPrefix) == targets.map { "gunicorn-\($0.pod)" })

                let cleanup = await run.cleanup()
                #expect(cleanup.status == .pass, "\(cleanup)")
                #expect(try await SimSupport.namespaceExists("kverify-step01", api: api) == false)
            }
        }

        @Test("step by step with running pods: traffic moves the exporter's counter (MetricWait), then every pod is judged")
        func stepByStepWithTraffic() async throws {
            try await SimulatedCluster.with(options: .init(nodes: 2)) { sim in
                let api = try SimSupport.api(sim)
                let run = PatternRun(api: api, options: .init(pattern: .daemonset, nodes: 2, manifests: try SimSupport.manifests(Pattern.daemonset.manifestFiles),
                                                              runID: "step02", timeout: .seconds(120), requestsPerPod: 5))
                try await run.createNamespace()
                let applied = try await run.apply()
                #expect(applied.redisNodePort != nil)  // allocated by the cluster: the manifest's fixed 30379 was removed
                #expect(try await run.wait(applied).result == .ready)
                let target = try #require(try await run.targets(applied).first)
                #expect(target.node == "kverify-sim-worker")

                let traffic = await run.traffic([target])
                #expect(traffic.map(\.observed) == ["5 of 5 answered"])
                // efficientgo/e2e's WaitSumMetrics(Greater(4), "gunicorn_worker_requests_total"), kverify's way.
                let total = try await MetricWait(api: api, namespace: applied.namespace)
                    .sum("gunicorn_worker_requests_total", of: target, .greater(4), timeout: .seconds(30))
                #expect(total >= 5)

                let (metrics, findings) = await run.scrape([target])
                #expect(metrics.first?.exposition?.family(named: "gunicorn_worker_requests_total") != nil)
                #expect(findings.filter { $0.status == .fail }.isEmpty, "\(findings.filter { $0.status == .fail })")
                #expect(PodScrape.perNode(metrics).map(\.status) == [.pass])
                #expect(await run.cleanup().status == .pass)
            }
        }

        @Test("lifecycle: TTIN adds a serving worker, TTOU removes one, HUP replaces all, USR1 keeps them, QUIT and ABRT replace one and count it; the never-incremented restart family is a named warning")
        func lifecycle() async throws {
            try await SimulatedCluster.with(options: .init(nodes: 2)) { sim in
                let api = try SimSupport.api(sim)
                let run = PatternRun(api: api, options: .init(pattern: .daemonset, nodes: 2, manifests: try SimSupport.manifests(Pattern.daemonset.manifestFiles),
                                                              runID: "life01", timeout: .seconds(120), requestsPerPod: 5))
                try await run.createNamespace()
                let applied = try await run.apply()
                #expect(try await run.wait(applied).result == .ready)
                let target = try #require(try await run.targets(applied).first)
                _ = await run.traffic([target])
                let findings = await Lifecycle(api: api, namespace: applied.namespace).run(target)
                let signals = [Lifecycle.masterCheck, Lifecycle.ttinCheck, Lifecycle.ttouCheck, Lifecycle.hupCheck, Lifecycle.usr1Check,
                               Lifecycle.quitCheck, Lifecycle.abortCheck]
                #expect(findings.map(\.checkID) == signals + [Lifecycle.restartFamiliesCheck], "\(findings)")
                for (check, reason) in [(Lifecycle.quitCheck, "quit"), (Lifecycle.abortCheck, "abort")] {
                    let observed = findings.first { $0.checkID == check }?.observed ?? ""
                    #expect(observed.hasSuffix("restart_total{reason=\"\(reason)\"} 1"), "\(observed)")
                }
                #expect(findings.first { $0.checkID == Lifecycle.usr1Check }?.observed?.hasSuffix("usr1 0 → 1") == true)
                for check in signals {
                    let finding = findings.first { $0.checkID == check }
                    #expect(finding?.status == .pass, "\(String(describing: finding))")
                    #expect(finding?.about?.pod == target.pod)
                }
                let families = try #require(findings.first { $0.checkID == Lifecycle.restartFamiliesCheck })
                #expect(families.status == .warn, "\(families)")
                // QUIT and ABRT move the worker families; only the master's count family stays silent.
                #expect(families.observed?.hasPrefix("no non-zero sample of gunicorn_master_worker_restart_count_total after") == true, "\(families)")

                // Without a way into the app container the phase fails at once, naming why, and signals nothing.
                let refused = await Lifecycle(api: api, namespace: applied.namespace, container: "ghost", timeout: .seconds(3)).run(target)
                #expect(refused.map(\.checkID) == [Lifecycle.masterCheck])
                #expect(refused.first?.status == .fail)
                #expect(refused.first?.observed?.contains("container ghost is not valid for pod \(target.pod)") == true, "\(refused)")
                #expect(await run.cleanup().status == .pass)
            }
        }

        @Test("keep leaves the namespace and says how to delete it; an existing namespace is never adopted")
        func keepAndNoAdoption() async throws {
            var options = SimulatedCluster.Options(nodes: 2)
            options.instantKubelet = true
            try await SimulatedCluster.with(options: options) { sim in
                let api = try SimSupport.api(sim)
                let run = PatternRun(api: api, options: .init(pattern: .daemonset, nodes: 2, manifests: try SimSupport.manifests(Pattern.daemonset.manifestFiles),
                                                              runID: "keep01", keep: true))
                try await run.createNamespace()
                let kept = await run.cleanup()
                #expect(kept.status == .warn)
                #expect(kept.detail == "delete it with: kubectl delete namespace kverify-keep01")
                #expect(try await SimSupport.namespaceExists("kverify-keep01", api: api))
                // A second run with the same id finds the namespace taken and stops before touching it.
                await #expect(throws: KubeError.self) { try await run.createNamespace() }
                let labels = try await api.get(Namespace.self, name: "kverify-keep01").metadata.labels
                #expect(labels?["kverify.io/run"] == "keep01")
            }
        }

        @Test("--nodes larger than the cluster fails in preflight, before anything is created", arguments: SimSupport.Backend.allCases)
        func tooManyNodes(backend: SimSupport.Backend) async throws {
            var options = SimulatedCluster.Options(nodes: 2)
            options.instantKubelet = true
            try await SimulatedCluster.with(options: options) { sim in
                let api = try SimSupport.api(sim, backend)
                let run = PatternRun(api: api, options: .init(pattern: .sidecar, nodes: 4, manifests: try SimSupport.manifests(Pattern.sidecar.manifestFiles),
                                                              runID: "big\(backend.rawValue.prefix(3))"))
                let result = await run.run()
                #expect(result.report.exitStatus == .checkFailed && result.stoppedBy == nil)
                let failed = result.report.findings.filter { $0.status == .fail }
                #expect(failed.map(\.checkID) == ["cluster.ready-nodes"])
                #expect(failed.first?.observed == "2 nodes: 2 Ready, 1 schedulable")
                #expect(result.report.phases.map(\.name) == ["exporter", "preflight", "cleanup"])
                #expect(result.report.findings.last?.observed == "nothing was created")
                #expect(try await SimSupport.namespaceExists(run.options.namespace, api: api) == false)
            }
        }

        @Test("a rollout that cannot finish times out with what is missing, and the namespace is still deleted")
        func timeoutCleansUp() async throws {
            // The exporter's readiness probe fails for 10 minutes: the deadline is what ends the wait.
            var options = SimulatedCluster.Options(nodes: 2)
            options.faults.slowReadiness = [.init(.init(container: "prometheus-exporter"), delay: .seconds(600))]
            try await SimulatedCluster.with(options: options) { sim in
                let api = try SimSupport.api(sim)
                let run = PatternRun(api: api, options: .init(pattern: .daemonset, nodes: 2, manifests: try SimSupport.manifests(Pattern.daemonset.manifestFiles),
                                                              runID: "tmo001", timeout: .seconds(3)))
                let result = await run.run()
                #expect(result.report.exitStatus == .checkFailed && result.stoppedBy == nil)
                let timedOut = try #require(result.report.findings.first { $0.checkID == "rollout.ready" })
                #expect(timedOut.status == .fail)
                #expect(timedOut.observed?.contains("node kverify-sim-worker: 0 Ready of 1 gunicorn-prometheus-exporter-daemonset pods, want exactly 1 Ready") == true,
                        "\(timedOut)")
                #expect(result.report.phases.map(\.name) == ["exporter", "preflight", "apply", "wait", "cleanup"])
                #expect(result.report.findings.last?.checkID == "cleanup.namespace")
                #expect(result.report.findings.last?.status == .pass)
                #expect(try await SimSupport.namespaceExists("kverify-tmo001", api: api) == false)
            }
        }
    }
}

extension SimRuns {
    /// The Unschedulable rule on the sim's real scheduler (preflight skipped, which would refuse 4 nodes on 3).
    @Suite("Unschedulable on the simulated cluster")
    struct UnschedulableSimTests {
        @Test("4 sidecar replicas on 3 nodes: the fourth pod is Unschedulable; after the grace period the wait fails with the scheduler's message")
        func unschedulable() async throws {
            try await SimulatedCluster.with(options: .init(nodes: 3)) { sim in
                let api = try SimSupport.api(sim)
                let run = PatternRun(api: api, options: .init(pattern: .sidecar, nodes: 4, manifests: try SimSupport.manifests(Pattern.sidecar.manifestFiles),
                                                              runID: "unsch1", timeout: .seconds(120), unschedulableGrace: .seconds(2)))
                try await run.createNamespace()
                let applied = try await run.apply()
                let outcome = try await run.wait(applied)
                guard case .failed(let problems) = outcome.result else {
                    Issue.record("expected a failed rollout, got \(outcome.result)")
                    _ = await run.cleanup()
                    return
                }
                #expect(problems.map(\.reason) == ["Unschedulable"])
                #expect(problems.first?.node == nil)
                #expect(problems.first?.message?.contains("0/3 nodes are available") == true, "\(problems)")
                let findings = await run.rolloutFindings(outcome, namespace: applied.namespace)
                #expect(findings.first?.detail?.contains("next: fewer --nodes, more nodes") == true, "\(findings)")
                #expect(await run.cleanup().status == .pass)
                #expect(try await SimSupport.namespaceExists("kverify-unsch1", api: api) == false)
            }
        }
    }
}
