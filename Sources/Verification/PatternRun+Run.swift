import Findings
import Foundation
import KubeClient
import RESP

extension PatternRun {
    /// The whole run's report, and the error that stopped it early (the cluster or Redis unreachable, a request
    /// the server refused), if one did; the CLI turns that into its exit code.
    public struct Result: Sendable {
        public var report: Report
        public var stoppedBy: (any Error & Sendable)?
        public var targets: [PodTarget]

        /// Whether every check passed and nothing stopped the run.
        public var verified: Bool { stoppedBy == nil && report.verdict != .fail }
    }

    /// The finding that counts the transient API errors a run retried (present only when there were some).
    public static let retriesCheck = "cluster.retries"

    /// Runs every phase in order, stopping at the first phase that makes the rest meaningless (preflight
    /// failed, rollout failed), and always cleans up — on success, failure, error and cancellation (Ctrl-C
    /// cancels the task; cleanup then runs in a task of its own that the cancellation does not reach).
    public func run() async -> Result {
        var report = Report(target: target)
        var stoppedBy: (any Error & Sendable)?
        var created = NamespaceCreation.notAttempted
        var targets: [PodTarget] = []
        do {
            try await phases(&report, created: &created, targets: &targets, stoppedBy: &stoppedBy)
        } catch where error is CancellationError || Task.isCancelled {
            // A request cut short by the cancellation may surface as its own error; the cause is the interruption.
            let during = report.phases.last.map { " during the \($0.name) phase" } ?? ""
            report.findings.append(.fail("run.interrupted", subject: "run \(options.runID)", expected: "a complete run",
                                         observed: "interrupted (SIGINT/SIGTERM/SIGHUP or cancelled)\(during)"))
        } catch let error as KubeError where !error.isCausedByInput && error.code != .notFound {
            report.findings.append(.fail("cluster.api", subject: "API server", expected: "the API server to answer", observed: error.message))
            stoppedBy = error
        } catch let error as KubeError {
            // Refused by the server for what was asked: an invalid manifest, a taken namespace, a missing object.
            report.findings.append(.fail("run.request", subject: "namespace/\(options.namespace)", expected: "the server to accept the run's requests",
                                         observed: error.message, detail: error.causes.isEmpty ? nil : error.causes.joined(separator: "; ")))
            stoppedBy = error
        } catch let error as RedisError {
            report.findings.append(.fail("redis.reachable", subject: "redis", expected: "the run's Redis to answer", observed: error.description,
                                         detail: "kverify reaches Redis as redis.access says (--redis-access: a NodePort on a node's InternalIP when it "
                                            + "answers, else a port-forward through the API server); --redis-addr names it directly"))
            stoppedBy = error
        } catch {
            report.findings.append(.fail("run.error", subject: "run \(options.runID)", expected: "no error", observed: "\(error)"))
        }
        if let summary = api.retries?.summary {
            // Passed, but only thanks to retries: said in the report, so a flaky API server does not go unnoticed.
            report.findings.append(.pass(Self.retriesCheck, subject: "API server", expected: "transient API errors (429, 5xx, dropped "
                + "connections) retried within each call's budget and the phase's deadline", observed: summary))
        }
        let start = ContinuousClock.now
        onEvent?(.phaseStarted("cleanup"))
        let cleanup = await Task { [self, created] in await self.cleanup(createdNamespace: created) }.value
        report.findings.append(cleanup)
        let seconds = (ContinuousClock.now - start).seconds
        report.phases.append(Report.Phase(name: "cleanup", seconds: seconds))
        onEvent?(.phaseFinished("cleanup", seconds: seconds, findings: [cleanup]))
        return Result(report: report, stoppedBy: stoppedBy, targets: targets)
    }

    private func phases(_ report: inout Report, created: inout NamespaceCreation, targets: inout [PodTarget], stoppedBy: inout (any Error & Sendable)?) async throws {
        // The manifests' own faults are found before the cluster is contacted.
        try ManifestScope.check(options.manifests, pattern: options.pattern)
        try options.endpointDiscovery.check(options.manifests, pattern: options.pattern)
        let exporter = self.exporter
        if let exporter {
            // Read from the files alone: a configuration the exporter would refuse stops the run before the cluster
            // is contacted, with the reason, instead of a crash loop to diagnose.
            try await phase("exporter", &report) { ((), [exporter.finding]) }
            guard exporter.problems.isEmpty else { return }
        }
        try await phase("preflight", &report) { ((), try await self.preflight()) }
        guard report.verdict != .fail else { return }

        let applied = try await phase("apply", &report) { () -> (Applied, [Finding]) in
            created = .requested
            try await self.createNamespace()
            created = .confirmed
            let applied = try await self.apply()
            var findings: [Finding] = [.pass("apply", subject: "namespace/\(applied.namespace)", expected: "server-side applied (fieldManager kverify)",
                                             observed: applied.workloads.joined(separator: ", "))]
            for name in applied.spreadAdded {
                findings.append(.pass("apply.spread", subject: "Deployment/\(name)", expected: "\(self.options.nodes) pods on \(self.options.nodes) distinct nodes",
                                      observed: "the Deployment had no spread rule (topologySpreadConstraints or podAntiAffinity): kverify "
                                        + "added topologySpreadConstraints maxSkew 1 over kubernetes.io/hostname, DoNotSchedule"))
            }
            return (applied, findings)
        }
        let outcome = try await phase("wait", &report) { () -> (RolloutWait.Outcome, [Finding]) in
            // No retry of a transient API error outlives the rollout's deadline.
            let outcome = try await RetryDeadline.with(.now + self.options.timeout) { try await self.wait(applied) }
            return (outcome, await self.rolloutFindings(outcome, namespace: applied.namespace))
        }
        guard case .ready = outcome.result else { return }

        targets = try await phase("traffic", &report) { () -> ([PodTarget], [Finding]) in
            let targets = try await self.targets(applied)
            guard !targets.isEmpty else {
                return (targets, [.fail("traffic.requests", subject: applied.appSelector, expected: "app pods", observed: "none")])
            }
            return (targets, Self.endpointFindings(targets) + (await self.traffic(targets)))
        }
        let podTargets = targets
        try await phase("scrape", &report) { ((), await self.scrape(podTargets).findings) }
        if let exporter {
            try await phase("workers", &report) {
                ((), await ExporterModeChecks(api: self.api, namespace: applied.namespace, config: exporter).run(podTargets))
            }
        }
        // The logs phase also re-reads the pods: a container restarted since Ready explains refused requests above.
        try await phase("logs", &report) {
            ((), await self.scanLogs(podTargets, pods: outcome.pods)
                + PodStability(namespace: applied.namespace).run(readyPods: outcome.pods, api: self.api))
        }

        // Workers the lifecycle's signals caught inside a metric write (hung until gunicorn killed them, or gone without
        // counting their exit): the keys they were writing may lack a TTL or a twin, which the Redis phases then
        // attribute to them instead of failing the exporter's key handling.
        var hungWorkers: [Lifecycle.HungWorker] = []
        // The pods the Redis phases audit: with the shutdown check, the deleted pod's keys and its replacement's.
        var redisTargets = podTargets
        var deleted: (target: PodTarget, goneAt: ContinuousClock.Instant)?
        if options.lifecycle {
            let (hung, shutdown) = try await phase("lifecycle", &report) { () -> (([Lifecycle.HungWorker], Shutdown.Outcome?), [Finding]) in
                let lifecycle = Lifecycle(api: self.api, namespace: applied.namespace, container: exporter?.container ?? "app",
                                          seriesExpire: exporter?.mode != .multiprocess)
                var findings: [Finding] = []
                var hung: [Lifecycle.HungWorker] = []
                for target in podTargets.prefix(max(0, self.options.lifecyclePods)) {
                    let outcome = await lifecycle.run(target)
                    findings += outcome.findings
                    hung += outcome.hungWorkers
                }
                // Last, as it ends the pod the signals went to: a graceful delete and the controller's replacement.
                guard self.options.shutdown, let first = podTargets.first else { return ((hung, nil), findings) }
                let shutdown = await Shutdown(api: self.api, namespace: applied.namespace, timeout: self.options.timeout)
                    .run(first, selector: applied.appSelector) { name in try await self.targets(applied).first { $0.pod == name } }
                return ((hung, shutdown), findings + shutdown.findings)
            }
            hungWorkers = hung
            deleted = shutdown?.deleted
            let replacement = shutdown?.replacement
            // The deleted pod's own keys are judged by lifecycle.shutdown.keys: no longer written, they may have expired
            // by the audit (a long grace period), which the audit would take for an exporter writing nothing.
            if let gone = deleted?.target, podTargets.filter({ $0.keyPrefix == gone.keyPrefix }).count == 1 {
                redisTargets.removeAll { $0.pod == gone.pod }
            }
            // Under a prefix every pod shares, the replacement's keys are audited with the rest already.
            if let replacement, !redisTargets.contains(where: { $0.keyPrefix == replacement.keyPrefix }) { redisTargets.append(replacement) }
        }

        if let exporter, exporter.mode == .multiprocess {
            report.findings.append(.pass("redis.skipped", subject: "container \(exporter.container)", expected: "the Redis audit and expiry where the exporter uses Redis",
                                         observed: "not applicable: multiprocess mode keeps the metrics in files under \(exporter.multiprocDir ?? "?"), "
                                            + "not in Redis (REDIS_ENABLED is not true)"))
            return
        }
        let reached: Void? = try await withRedis(applied) { endpoint, via in
            try await phase("redis", &report) { () -> ((), [Finding]) in
                let reached = Finding.pass("redis.access", subject: "redis \(endpoint)", expected: "Redis reachable from kverify", observed: via)
                var findings = [reached] + (try await self.redisAudit(redisTargets, endpoint: endpoint, killedWriters: hungWorkers))
                // The pod the shutdown check deleted, under a prefix of its own: its keys are no longer written.
                if let deleted, let prefix = deleted.target.keyPrefix, !redisTargets.contains(where: { $0.keyPrefix == prefix }) {
                    let left = try await self.redisCheck(endpoint).keysLeft(prefix: prefix)
                    findings.append(Shutdown.keysFinding(deleted.target, goneAt: deleted.goneAt, ttlSeconds: self.options.redisTTLSeconds,
                                                         alive: left.alive, longestMilliseconds: left.longestMilliseconds))
                }
                return ((), findings)
            }
            guard options.observeExpiry else { return }
            try await phase("expiry", &report) { () -> ((), [Finding]) in
                ((), try await self.redisExpiry(redisTargets, applied: applied, endpoint: endpoint, killedWriters: hungWorkers))
            }
        }
        if reached == nil {
            // Only `--redis-access node-port` (or a Redis no Service selects) gets here: the NodePort route was required.
            let service = applied.redis.map { "Service \($0.service)" } ?? "the Service selecting app=redis"
            report.findings.append(.fail("redis.reachable", subject: service, expected: "a NodePort (or --redis-addr, or --redis-access port-forward)",
                                         observed: "no nodePort allocated, or no Ready node with an InternalIP"))
            stoppedBy = KVerifyError(.unreachable, "\(service) has no NodePort route from here, and no --redis-addr was given; "
                                     + "try --redis-access port-forward")
        }
    }

    /// Times one phase into the report (also when it throws) and tells the listener.
    @discardableResult
    private func phase<T>(_ name: String, _ report: inout Report, _ body: () async throws -> (T, [Finding])) async throws -> T {
        onEvent?(.phaseStarted(name))
        let start = ContinuousClock.now
        let value: T
        var findings: [Finding]
        do {
            (value, findings) = try await body()
        } catch {
            let seconds = (ContinuousClock.now - start).seconds
            report.phases.append(Report.Phase(name: name, seconds: seconds))
            onEvent?(.phaseFinished(name, seconds: seconds, findings: []))
            throw error
        }
        let interrupted = Task.isCancelled
        if interrupted {
            // A check cut short by the interruption records the cancellation as its failure (a request that ended
            // with CancellationError): only what the phase confirmed before it stays in the report.
            findings.removeAll { $0.status == .fail }
        }
        let seconds = (ContinuousClock.now - start).seconds
        report.findings += findings
        report.phases.append(Report.Phase(name: name, seconds: seconds))
        onEvent?(.phaseFinished(name, seconds: seconds, findings: findings))
        if interrupted { throw CancellationError() }
        return value
    }
}
