import Findings
import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import KubeSim
import SimFaults
import SimStore
import Testing
import Verification

extension SimRuns {
    /// Whole runs against the simulated cluster with its real kubelet: redis-server, gunicorn with the real exporter
    /// and the sidecar run as processes, probes decide readiness, NodePorts forward to Redis. Every test checks the
    /// exit status, the diagnosis, and that the run namespace is gone afterwards.
    @Suite("PatternRun end to end on the simulated cluster")
    struct PatternRunE2ETests {
        struct Outcome {
            var result: PatternRun.Result
            var namespaceLeft: Bool

            func findings(_ checkID: String) -> [Finding] { result.report.findings.filter { $0.checkID == checkID } }
            var failed: [Finding] { result.report.findings.filter { $0.status == .fail } }
        }

        /// Runs a whole pattern on a fresh sim with `nodes` nodes. `duringWait` runs when the wait phase starts.
        func run(_ pattern: Pattern, nodes: Int = 3, backend: SimSupport.Backend = .api, faults: FaultPlan = FaultPlan(),
                 _ configure: (inout PatternRun.Options) -> Void = { _ in },
                 duringWait: (@Sendable (SimulatedCluster) -> Void)? = nil) async throws -> Outcome {
            var simOptions = SimulatedCluster.Options(nodes: nodes)
            simOptions.faults = faults
            return try await SimulatedCluster.with(options: simOptions) { sim in
                let api = try SimSupport.api(sim, backend)
                // The default 30 s TTL, not a shorter one: the exporter refreshes only the Redis keys it writes, so a
                // histogram bucket no request lands in (+Inf) expires TTL seconds after the worker started, and a later
                // scrape rightly fails exposition.histogram-consistent (seen here with a 5 s TTL).
                var options = PatternRun.Options(pattern: pattern, nodes: nodes, manifests: try SimSupport.manifests(pattern.manifestFiles),
                                                 redisTTLSeconds: 30, timeout: .seconds(120), requestsPerPod: 10)
                configure(&options)
                let run = PatternRun(api: api, options: options) { event in
                    if case .phaseStarted("wait") = event { duringWait?(sim) }
                }
                let result = await run.run()
                let left = try await SimSupport.namespaceExists(options.namespace, api: api)
                return Outcome(result: result, namespaceLeft: left)
            }
        }

        @Test("a healthy DaemonSet run verifies every worker: rollout, traffic, metrics per node, Redis TTLs and expiry",
              arguments: SimSupport.Backend.allCases)
        func daemonSetPasses(backend: SimSupport.Backend) async throws {
            let outcome = try await run(.daemonset, backend: backend)
            #expect(outcome.failed.isEmpty)
            #expect(outcome.result.targets.map(\.node).sorted() == ["kverify-sim-worker", "kverify-sim-worker2"])
            #expect(outcome.findings("rollout.nodes-covered").map(\.observed) == ["2 nodes, one Ready pod each"])
            #expect(outcome.findings("node.metrics").map(\.subject) == ["node/kverify-sim-worker", "node/kverify-sim-worker2"])
            #expect(outcome.findings("traffic.requests").map(\.observed) == ["10 of 10 answered", "10 of 10 answered"])
            // The graceful delete of one pod: Terminating, every container exits cleanly, the replacement serves and is
            // audited in its place (the deleted pod's keys are lifecycle.shutdown.keys' to judge).
            #expect(outcome.findings(Shutdown.terminatingCheck).map(\.status) == [.pass])
            #expect(outcome.findings(Shutdown.exitCheck).map(\.status) == [.pass, .pass], "\(outcome.findings(Shutdown.exitCheck))")
            #expect(outcome.findings(Shutdown.replacementCheck).map(\.status) == [.pass])
            let keys = try #require(outcome.findings(Shutdown.keysCheck).first)
            #expect(keys.status == .pass, "\(keys)")
            #expect(keys.observed?.hasSuffix(": none refreshed since") == true || keys.observed?.hasPrefix("every key gone") == true, "\(keys)")
            #expect(outcome.findings("redis.ttl.missing").count == 2)
            #expect(outcome.findings("redis.expiry.all-expired").allSatisfy { $0.status == .pass })
            #expect(outcome.findings("redis.expiry.all-expired").count == 2)
            #expect(outcome.result.report.phases.map(\.name) == ["exporter", "preflight", "apply", "wait", "traffic", "scrape", "workers", "logs", "lifecycle", "redis", "expiry", "cleanup"])
            #expect(!outcome.namespaceLeft)
        }

        @Test("a container that ignores SIGTERM fails the graceful delete: killed at the end of its grace period (137), named with its last log lines; the replacement still verifies")
        func shutdownIgnoringSIGTERM() async throws {
            let outcome = try await run(.daemonset) { options in
                options.observeExpiry = false
                guard let index = options.manifests.firstIndex(where: { $0.kind == "DaemonSet" }) else { return }
                var object = options.manifests[index].object
                var containers = object.value(at: ["spec", "template", "spec", "containers"])?.arrayValue ?? []
                containers.append(["name": "log-shipper", "image": "busybox:1.36",
                                   "command": ["sh", "-c", "trap 'echo got SIGTERM, still shipping' TERM; while true; do echo shipping logs; sleep 1; done"]])
                object.set(["spec", "template", "spec", "containers"], to: .array(containers))
                object.set(["spec", "template", "spec", "terminationGracePeriodSeconds"], to: 3)
                options.manifests[index].object = object
            }
            let exits = outcome.findings(Shutdown.exitCheck)
            let shipper = try #require(exits.first { $0.subject.hasSuffix("container/log-shipper") }, "\(exits)")
            #expect(shipper.status == .fail)
            #expect(shipper.observed?.hasPrefix("killed at the end of its grace period (exit 137") == true, "\(shipper)")
            #expect(shipper.detail?.contains("last log lines: ") == true && shipper.detail?.contains("shipping logs") == true, "\(shipper)")
            // SIGTERM → exit, per container: a kill at the end of a 3 s grace period cannot be seen sooner after the delete.
            func secondsAfterDelete(_ finding: Finding) -> Double? {
                (finding.observed?.firstMatch(of: /, (\d+\.\d+) s after the delete$/)).flatMap { Double($0.1) }
            }
            let killedAfter = try #require(secondsAfterDelete(shipper), "\(shipper)")
            #expect(killedAfter >= 3, "\(shipper)")
            // The exporter's own containers stop cleanly on SIGTERM, each with its time.
            #expect(exits.filter { !$0.subject.hasSuffix("container/log-shipper") }.allSatisfy { $0.status == .pass }, "\(exits)")
            #expect(exits.count == 3 && exits.allSatisfy { secondsAfterDelete($0) != nil }, "\(exits)")
            #expect(outcome.findings(Shutdown.terminatingCheck).first?.observed?.hasPrefix("Terminating with a 3 s grace period") == true)
            #expect(outcome.findings(Shutdown.replacementCheck).map(\.status) == [.pass], "\(outcome.findings(Shutdown.replacementCheck))")
            #expect(outcome.failed.map(\.checkID) == [Shutdown.exitCheck], "\(outcome.failed)")
            #expect(outcome.result.report.exitStatus == .checkFailed)
            #expect(!outcome.namespaceLeft)
        }

        @Test("a healthy sidecar run puts one Ready pod on each of the 3 nodes and verifies each", arguments: SimSupport.Backend.allCases)
        func sidecarPasses(backend: SimSupport.Backend) async throws {
            let outcome = try await run(.sidecar, backend: backend) { $0.observeExpiry = false }
            #expect(outcome.failed.isEmpty)
            #expect(outcome.result.targets.map(\.node).sorted() == ["kverify-sim-control-plane", "kverify-sim-worker", "kverify-sim-worker2"])
            #expect(outcome.findings("node.metrics").count == 3)
            #expect(outcome.findings("node.metrics").allSatisfy { $0.status == .pass })
            #expect(outcome.findings("metrics.requests-counted").count == 3)
            // Three prefixes: two pods and the replacement of the one the shutdown check deleted.
            #expect(outcome.findings("redis.ttl.above-configured").map(\.observed) == ["none above", "none above", "none above"])
            #expect(!outcome.namespaceLeft)
        }

        @Test("a busy API server (3 % of requests 429, watches cut every second, half the resumes 410 Gone) still verifies")
        func flakyAPI() async throws {
            var faults = FaultPlan()
            faults.apiErrorRate = 0.03
            faults.apiErrorCode = 429
            faults.retryAfterSeconds = 1
            faults.watchDropAfter = .seconds(1)
            faults.watchGoneRate = 0.5
            let outcome = try await run(.daemonset, faults: faults) { $0.observeExpiry = false }
            #expect(outcome.failed.isEmpty)
            #expect(outcome.findings("node.metrics").count == 2)
            #expect(!outcome.namespaceLeft)
        }

        @Test("a failing API server (20 % 500s, 5 % 503s, 20 % 429s, watches cut every 2 s) still verifies both patterns through both backends, and the report counts the retries",
              arguments: [(Pattern.daemonset, SimSupport.Backend.api), (.daemonset, .kubectl), (.sidecar, .api), (.sidecar, .kubectl)])
        func faultMix(pattern: Pattern, backend: SimSupport.Backend) async throws {
            var faults = FaultPlan()
            faults.apiErrorMix = [.init(code: 500, rate: 0.2), .init(code: 503, rate: 0.05), .init(code: 429, rate: 0.2)]
            faults.retryAfterSeconds = 1
            faults.watchDropAfter = .seconds(2)
            // Through kubectl, with retries, a run takes minutes on a loaded machine: a 30 s TTL would expire the
            // histogram buckets no request reached before the scrape (the exporter refreshes only keys it writes).
            let outcome = try await run(pattern, backend: backend, faults: faults) {
                $0.observeExpiry = false
                $0.redisTTLSeconds = 600
            }
            #expect(outcome.failed.isEmpty)
            #expect(outcome.findings("node.metrics").count == (pattern == .daemonset ? 2 : 3))
            let retries = try #require(outcome.findings(PatternRun.retriesCheck).first)
            #expect(retries.status == .pass)
            // Roughly a quarter of a few hundred calls met a 500 or 503 (kubectl itself retries a 429 with Retry-After,
            // so only the REST backend sees those); the summary names each status met.
            #expect(retries.observed?.contains("× HTTP 500") == true, "\(retries)")
            if backend == .api { #expect(retries.observed?.contains("× HTTP 429") == true, "\(retries)") }
            #expect(!outcome.namespaceLeft)
        }

        @Test("two runs at once on one cluster do not clash: own namespaces, own allocated NodePorts, both verified")
        func concurrentRuns() async throws {
            try await SimulatedCluster.with(options: .init(nodes: 3)) { sim in
                let api = try SimSupport.api(sim)
                let manifests = try SimSupport.manifests(Pattern.daemonset.manifestFiles)
                let runs = ["conc01", "conc02"].map { id in
                    PatternRun(api: api, options: .init(pattern: .daemonset, nodes: 3, manifests: manifests, runID: id, redisTTLSeconds: 30,
                                                        timeout: .seconds(120), requestsPerPod: 5, observeExpiry: false))
                }
                async let first = runs[0].run()
                async let second = runs[1].run()
                let results = await [first, second]
                for result in results {
                    #expect(result.report.findings.filter { $0.status == .fail }.isEmpty)
                    #expect(result.targets.count == 2)
                }
                #expect(Set(results.flatMap(\.targets).map(\.pod)).count == 4)
                #expect(try await SimSupport.namespaceExists("kverify-conc01", api: api) == false)
                #expect(try await SimSupport.namespaceExists("kverify-conc02", api: api) == false)
            }
        }

        @Test("an image no node can pull fails fast with ErrImagePull/ImagePullBackOff, the node and the pod's events",
              arguments: SimSupport.Backend.allCases)
        func imagePull(backend: SimSupport.Backend) async throws {
            let outcome = try await run(.daemonset, backend: backend) { $0.appImage = "nosuch:1"; $0.observeExpiry = false }
            #expect(outcome.result.report.exitStatus == .checkFailed && outcome.result.stoppedBy == nil)
            let pods = outcome.failed.filter { $0.checkID == "rollout.pod" }
            #expect(!pods.isEmpty, "\(outcome.failed)")
            for finding in pods {
                #expect(finding.observed?.hasPrefix("ErrImagePull") == true || finding.observed?.hasPrefix("ImagePullBackOff") == true, "\(finding)")
                #expect(finding.detail?.contains("node kverify-sim-worker") == true, "\(finding)")
                #expect(finding.detail?.contains("events: ") == true, "\(finding)")
            }
            #expect(outcome.result.report.phases.map(\.name) == ["exporter", "preflight", "apply", "wait", "cleanup"])
            #expect(!outcome.namespaceLeft)
        }

        @Test("a crashing app container fails fast with CrashLoopBackOff, its exit code and its log tail",
              arguments: SimSupport.Backend.allCases)
        func crashLoop(backend: SimSupport.Backend) async throws {
            var faults = FaultPlan()
            faults.crashOnStart = [.init(.init(container: "app"), exitCode: 3)]
            let outcome = try await run(.daemonset, backend: backend, faults: faults) { $0.observeExpiry = false }
            #expect(outcome.result.report.exitStatus == .checkFailed && outcome.result.stoppedBy == nil)
            let crash = try #require(outcome.failed.first { $0.checkID == "rollout.pod" }, "\(outcome.failed)")
            #expect(crash.subject.hasSuffix("container app"), "\(crash)")
            #expect(crash.observed?.hasPrefix("CrashLoopBackOff") == true, "\(crash)")
            #expect(crash.detail?.contains("last termination: exit code 3") == true, "\(crash)")
            #expect(crash.detail?.contains("log lines:\n    kverify sim fault: app crashes on start") == true, "\(crash)")
            #expect(!outcome.namespaceLeft)
        }

        @Test("an env var from a Secret that does not exist fails fast with CreateContainerConfigError naming it")
        func containerConfigError() async throws {
            // The app container reads REDIS_PASSWORD from a Secret nobody created.
            let path = "\(SimSupport.manifestsDirectory)/daemonset.yaml"
            var text = try String(contentsOfFile: path, encoding: .utf8)
            let marker = "        - name: app\n"
            let appStart = try #require(text.range(of: marker))
            let envStart = try #require(text.range(of: "          env:\n", range: appStart.upperBound..<text.endIndex))
            text.insert(contentsOf: "            - name: REDIS_PASSWORD\n              valueFrom:\n                secretKeyRef: {name: redis-auth, key: password}\n",
                        at: envStart.upperBound)
            let manifests = try SimSupport.manifests(["redis.yaml"]) + ManifestLoader.load(yaml: text, file: path)
            let outcome = try await run(.daemonset) { $0.manifests = manifests; $0.observeExpiry = false }
            #expect(outcome.result.report.exitStatus == .checkFailed && outcome.result.stoppedBy == nil)
            let failure = try #require(outcome.failed.first { $0.checkID == "rollout.pod" }, "\(outcome.failed)")
            #expect(failure.subject.hasSuffix("container app"), "\(failure)")
            #expect(failure.observed?.hasPrefix("CreateContainerConfigError") == true, "\(failure)")
            #expect(failure.observed?.contains("redis-auth") == true, "\(failure)")
            #expect(failure.detail?.contains("next: a referenced ConfigMap/Secret key or env source is missing") == true)
            #expect(!outcome.namespaceLeft)
        }

        @Test("an app whose exporter skips its metrics server (EXPORTER_MODE=default) fails on the logged warning, per pod")
        func metricsServerSkipped() async throws {
            let outcome = try await run(.daemonset) {
                $0.environment = [.init(container: "app", name: "EXPORTER_MODE", value: "default")]
                $0.observeExpiry = false
            }
            #expect(outcome.result.report.exitStatus == .checkFailed && outcome.result.stoppedBy == nil)
            let skipped = outcome.findings("exporter.metrics-server-skipped")
            #expect(skipped.count == 2, "\(outcome.failed)")
            #expect(skipped.allSatisfy { $0.status == .fail && $0.subject.hasSuffix("container/app") })
            #expect(skipped.allSatisfy { $0.observed?.contains("PROMETHEUS_MULTIPROC_DIR not set; skipping metrics server") == true })
            #expect(!outcome.namespaceLeft)
        }

        @Test("REDIS_TTL_DISABLED=true leaves keys without a TTL: redis.ttl.missing fails for every pod")
        func ttlDisabled() async throws {
            let outcome = try await run(.daemonset) {
                $0.environment = [.init(container: "app", name: "REDIS_TTL_DISABLED", value: "true")]
                $0.observeExpiry = false
            }
            #expect(outcome.result.report.exitStatus == .checkFailed && outcome.result.stoppedBy == nil)
            let missing = outcome.findings("redis.ttl.missing")
            // The pod left, and the replacement of the one the shutdown check deleted.
            #expect(missing.count == 2)
            #expect(missing.allSatisfy { $0.status == .fail }, "\(missing)")
            #expect(!outcome.namespaceLeft)
        }

        @Test("a node that stops reporting during the rollout fails it, naming the node")
        func nodeNotReady() async throws {
            let outcome = try await run(.daemonset, { $0.observeExpiry = false }, duringWait: { sim in sim.makeNodeNotReady("kverify-sim-worker2") })
            #expect(outcome.result.report.exitStatus == .checkFailed && outcome.result.stoppedBy == nil)
            let node = try #require(outcome.failed.first { $0.observed?.hasPrefix("NodeNotReady") == true }, "\(outcome.failed)")
            #expect(node.observed == "NodeNotReady: node kverify-sim-worker2 Ready=Unknown (NodeStatusUnknown): Kubelet stopped posting node status.")
            #expect(!outcome.namespaceLeft)
        }
    }
}
