import Findings
import Foundation
import KubeClient
import PromText

/// The lifecycle phase: gunicorn's worker-management signals sent to the master of an app pod through
/// `KubeAPI.exec`, each followed by what the signal implies, on the processes and on `/metrics`:
///
/// - **TTIN**: one more worker process (a child of the master); it serves (its `pid` appears in `/metrics`, which
///   happens when it answers a request); `gunicorn_master_worker_restart_total{reason="ttin"}` grows.
/// - **TTOU**: one worker process fewer; `/metrics` keeps answering; `…{reason="ttou"}` grows.
/// - **HUP**: every worker replaced by a new process (same count, no old pid left) and every new one serves;
///   `…{reason="hup"}` grows; no series of `gunicorn_worker_requests_total` or of the master's restart counters
///   goes backwards (compared series by series; one that expired from Redis meanwhile is not a reset).
///
/// - **USR1**: the master reopens its logs; every worker stays; `…{reason="usr1"}` grows.
/// - **QUIT** / **ABRT** to one worker: it leaves, a new worker takes its place and serves, and
///   `gunicorn_worker_restart_total{reason="quit"|"abort"}` counts it under the old worker's `worker_id`. A worker
///   that hangs in its handler until gunicorn kills it, or leaves without its exit counted, is a warning
///   (`workerSignal` says why); the signal then goes to a second worker, and a second such worker in a row is a
///   failure.
/// - **USR2** is not sent: it forks a second master in the container (gunicorn's binary upgrade), whose metrics
///   server cannot bind the port the first one holds, and the upgrade ends with the old master's exit — the
///   container's main process in a pod.
///
/// The exporter's `master.py` calls `_safe_inc_restart(reason)` without a `worker_id` from every signal handler, so
/// `gunicorn_master_worker_restart_count_total` never moves; the restart families it declares are reported as a
/// warning when still without a non-zero sample after the signals.
///
/// After a signal whose effect did not show, the master itself is examined (`stalledMaster`): a master whose main
/// thread waits on a lock throughout, or that leaves an exited worker unreaped, no longer handles signals at all.
/// That is a `lifecycle.master.signals` failure naming the evidence, and the remaining signals are not sent to that
/// pod (each would only time out the same way).
///
/// Every wait is a poll against a deadline (the process list through exec, `/metrics` through the API proxy), with a
/// growing pause; nothing sleeps a fixed time.
public struct Lifecycle: Sendable {
    public static let ttinCheck = "lifecycle.ttin"
    public static let ttouCheck = "lifecycle.ttou"
    public static let hupCheck = "lifecycle.hup"
    public static let usr1Check = "lifecycle.usr1"
    public static let quitCheck = "lifecycle.quit"
    public static let abortCheck = "lifecycle.abort"
    public static let masterCheck = "lifecycle.master"
    public static let masterSignalsCheck = "lifecycle.master.signals"
    public static let restartFamiliesCheck = "lifecycle.restart_families"

    public static let masterRestartFamily = "gunicorn_master_worker_restart_total"
    /// Declared by the exporter, incremented only with a worker_id, which no signal handler of master.py passes.
    public static let workerRestartFamilies = [
        "gunicorn_worker_restart_total", "gunicorn_worker_restart_count_total", "gunicorn_master_worker_restart_count_total",
    ]

    public var api: any KubeAPI
    public var namespace: String
    /// The container gunicorn runs in.
    public var container: String = "app"
    /// Deadline of each wait (a worker to appear, to go, to serve).
    public var timeout: Duration = .seconds(60)
    /// Whether a series may vanish between two scrapes (Redis storage: each key expires a TTL after its last write).
    /// False in multiprocess mode, where a dead worker's counters stay in its files: a vanished series is a reset.
    public var seriesExpire: Bool

    public init(api: any KubeAPI, namespace: String, container: String = "app", timeout: Duration = .seconds(60), seriesExpire: Bool = true) {
        self.api = api
        self.namespace = namespace
        self.container = container
        self.timeout = timeout
        self.seriesExpire = seriesExpire
    }

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// A worker the exporter's signal race caught inside a metric write (see `workerSignal`): the key it was writing may
    /// lack its TTL or its meta twin, which the Redis phases attribute to it instead of to the exporter's key handling.
    public struct HungWorker: Sendable, Hashable {
        /// How the race ended the worker.
        public enum Ending: Sendable, Hashable {
            /// It hung in its handler until gunicorn's master killed it at its timeout.
            case killedAtTimeout
            /// It left, but its handler's write failed on the interrupted Redis connection: its exit was never counted.
            case leftUncounted
        }

        public var pod: String
        public var pid: Int
        public var signal: String
        public var ending: Ending

        public init(pod: String, pid: Int, signal: String, ending: Ending = .killedAtTimeout) {
            self.pod = pod
            self.pid = pid
            self.signal = signal
            self.ending = ending
        }

        /// Why its keys are excused, for the Redis findings.
        public var reason: String {
            switch ending {
            case .killedAtTimeout: "worker pid \(pid) of pod \(pod) hung on the lifecycle phase's SIG\(signal) and was killed by gunicorn"
            case .leftUncounted: "worker pid \(pid) of pod \(pod) left on the lifecycle phase's SIG\(signal) without counting it (a metric write was interrupted)"
            }
        }
    }

    /// What the phase found on one pod, and the workers its signals caught mid-write (their Redis keys may lack a TTL
    /// or a twin).
    public struct Outcome: Sendable {
        public var findings: [Finding]
        public var hungWorkers: [HungWorker]
    }

    /// One finding per signal for the pod, then the restart-families warning (or pass).
    public func run(_ target: PodTarget) async -> Outcome {
        var hung: [HungWorker] = []
        let findings = await run(target, hung: &hung)
        return Outcome(findings: findings, hungWorkers: hung)
    }

    private func run(_ target: PodTarget, hung: inout [HungWorker]) async -> [Finding] {
        let subject = "container/\(container)"
        let master: Int
        var workers: Set<Int>
        do {
            master = try await findMaster(target)
            workers = try await children(of: master, in: target)
            guard !workers.isEmpty else { throw Failed(description: "the master (pid \(master)) has no worker processes") }
        } catch {
            return [target.scope(.fail(Self.masterCheck, subject: subject, expected: "the gunicorn master's pid and its workers, through exec",
                                       observed: "\(error)"))]
        }
        var findings: [Finding] = [target.scope(.pass(Self.masterCheck, subject: subject, expected: "the gunicorn master and its workers",
                                                      observed: "master pid \(master), workers \(workers.sorted())"))]

        // TTIN: one worker more, and it serves.
        do {
            let before = try await scrape(target)
            let old = workers
            let start = ContinuousClock.now
            try await signal("TTIN", master, target)
            let grown = try await waitForChildren(of: master, in: target, "one worker more than \(old.count)") { $0.count == old.count + 1 && $0.isSuperset(of: old) }
            let added = grown.subtracting(workers)
            let spawned = ContinuousClock.now - start
            try await waitServing(added, target)
            let serving = ContinuousClock.now - start
            let counter = try await waitCounter(reason: "ttin", above: before, target)
            workers = grown
            findings.append(target.scope(.pass(Self.ttinCheck, subject: subject,
                expected: "SIGTTIN adds one worker process that serves; \(Self.masterRestartFamily){reason=\"ttin\"} grows",
                observed: "worker pid \(added.sorted()) forked \(Self.seconds(spawned)) after the signal, serving after \(Self.seconds(serving)); "
                    + "ttin \(Self.number(counter.before)) → \(Self.number(counter.after))")))
        } catch {
            findings.append(target.scope(.fail(Self.ttinCheck, subject: subject, expected: "SIGTTIN adds one worker process that serves",
                                               observed: "\(error)")))
            if let stalled = await stalledMaster(master, after: "TTIN", target) { return findings + [stalled] }
        }

        // TTOU: one worker fewer; /metrics keeps answering.
        do {
            let before = try await scrape(target)
            let old = workers
            let start = ContinuousClock.now
            try await signal("TTOU", master, target)
            let shrunk = try await waitForChildren(of: master, in: target, "one worker fewer than \(old.count)") { $0.count == old.count - 1 && $0.isSubset(of: old) }
            let removed = workers.subtracting(shrunk)
            let gone = ContinuousClock.now - start
            let counter = try await waitCounter(reason: "ttou", above: before, target)
            workers = shrunk
            findings.append(target.scope(.pass(Self.ttouCheck, subject: subject,
                expected: "SIGTTOU removes one worker process; /metrics keeps answering; \(Self.masterRestartFamily){reason=\"ttou\"} grows",
                observed: "worker pid \(removed.sorted()) gone \(Self.seconds(gone)) after the signal; ttou \(Self.number(counter.before)) → \(Self.number(counter.after))")))
        } catch {
            findings.append(target.scope(.fail(Self.ttouCheck, subject: subject, expected: "SIGTTOU removes one worker process", observed: "\(error)")))
            if let stalled = await stalledMaster(master, after: "TTOU", target) { return findings + [stalled] }
        }

        // HUP: every worker replaced, the new ones serve, counters do not go backwards.
        do {
            let before = try await scrape(target)
            let old = workers
            let start = ContinuousClock.now
            try await signal("HUP", master, target)
            let replaced = try await waitForChildren(of: master, in: target, "\(old.count) workers, none of \(old.sorted())") { $0.count == old.count && $0.isDisjoint(with: old) }
            let spawned = ContinuousClock.now - start
            try await waitServing(replaced, target)
            let serving = ContinuousClock.now - start
            let counter = try await waitCounter(reason: "hup", above: before, target)
            let after = try await scrape(target)
            let requestsBefore = MetricWait.sum("gunicorn_worker_requests_total", in: before) ?? 0
            let requestsAfter = MetricWait.sum("gunicorn_worker_requests_total", in: after) ?? 0
            let comparison = Self.counterComparison(before, after, families: ["gunicorn_worker_requests_total", Self.masterRestartFamily],
                                                    seriesExpire: seriesExpire)
            guard comparison.backwards.isEmpty else {
                throw Failed(description: "counters went backwards across the reload: " + comparison.backwards.joined(separator: "; "))
            }
            workers = replaced
            findings.append(target.scope(.pass(Self.hupCheck, subject: subject,
                expected: "SIGHUP replaces every worker with a new process that serves; counters do not go backwards; \(Self.masterRestartFamily){reason=\"hup\"} grows",
                observed: "workers \(old.sorted()) → \(replaced.sorted()), forked \(Self.seconds(spawned)) after the signal, all serving after \(Self.seconds(serving)); "
                    + "requests_total \(Self.number(requestsBefore)) → \(Self.number(requestsAfter))"
                    + (comparison.expired > 0 ? " (\(comparison.expired) series expired meanwhile)" : "")
                    + "; hup \(Self.number(counter.before)) → \(Self.number(counter.after))")))
        } catch {
            // Whether the master registered the reload at all: its counter is the series a dropped reload leaves unmoved.
            let counted = (try? await scrape(target)).map { Self.restartCounts($0)["hup"] ?? 0 }
            let series = counted.map { "; \(Self.masterRestartFamily){reason=\"hup\"} \($0 == 0 ? "absent" : "at \(Self.number($0))")" } ?? ""
            findings.append(target.scope(.fail(Self.hupCheck, subject: subject,
                                               expected: "SIGHUP replaces every worker with a new process that serves; \(Self.masterRestartFamily){reason=\"hup\"} grows",
                                               observed: "\(error)\(series)")))
            if let stalled = await stalledMaster(master, after: "HUP", target) { return findings + [stalled] }
        }

        // USR1: the master reopens its log files and passes the signal on; no worker is replaced.
        do {
            let before = try await scrape(target)
            let old = workers
            try await signal("USR1", master, target)
            let counter = try await waitCounter(reason: "usr1", above: before, target)
            let now = try await children(of: master, in: target)
            guard now == old else { throw Failed(description: "workers changed across USR1: \(old.sorted()) → \(now.sorted())") }
            _ = try await scrape(target)
            findings.append(target.scope(.pass(Self.usr1Check, subject: subject,
                expected: "SIGUSR1 (reopen logs) keeps every worker; /metrics keeps answering; \(Self.masterRestartFamily){reason=\"usr1\"} grows",
                observed: "workers \(now.sorted()) unchanged; usr1 \(Self.number(counter.before)) → \(Self.number(counter.after))")))
        } catch {
            findings.append(target.scope(.fail(Self.usr1Check, subject: subject, expected: "SIGUSR1 keeps every worker; usr1 grows", observed: "\(error)")))
            if let stalled = await stalledMaster(master, after: "USR1", target) { return findings + [stalled] }
        }

        // QUIT and ABRT to one worker: it ends, counting the restart under its own worker_id; the master replaces it.
        for (signal, reason, check) in [("QUIT", "quit", Self.quitCheck), ("ABRT", "abort", Self.abortCheck)] {
            do {
                let signalled = try await workerSignal(signal, reason: reason, check: check, master: master, workers: workers, target)
                workers = signalled.workers
                guard signalled.raced else {
                    findings.append(signalled.finding)
                    continue
                }
                // One hang or lost count is the exporter's race with a write in progress; the same signal to the next
                // worker must then end it cleanly, or the handler is broken for another reason.
                hung.append(HungWorker(pod: target.pod, pid: signalled.victim, signal: signal,
                                       ending: signalled.hung ? .killedAtTimeout : .leftUncounted))
                let again = try await workerSignal(signal, reason: reason, check: check, master: master, workers: workers, target)
                workers = again.workers
                if again.raced {
                    hung.append(HungWorker(pod: target.pod, pid: again.victim, signal: signal,
                                           ending: again.hung ? .killedAtTimeout : .leftUncounted))
                }
                var finding = signalled.finding
                if again.raced {
                    finding.status = .fail
                    finding.observed = "two workers in a row met the race on SIG\(signal): " + (signalled.finding.observed ?? "")
                        + "; then " + (again.finding.observed ?? "")
                } else {
                    finding.observed = (finding.observed ?? "") + "; SIG\(signal) to the next worker: " + (again.finding.observed ?? "")
                }
                findings.append(finding)
            } catch {
                findings.append(target.scope(.fail(check, subject: subject,
                    expected: "SIG\(signal) to a worker ends it with gunicorn_worker_restart_total{reason=\"\(reason)\"} under its worker_id; a new worker serves",
                    observed: "\(error)")))
                if let stalled = await stalledMaster(master, after: signal, target) { return findings + [stalled] }
            }
        }

        // The families the exporter declares for restarts but never increments from a signal.
        if let last = try? await scrape(target) {
            let silent = Self.workerRestartFamilies.filter { name in
                !last.families.contains { $0.name == name || $0.name + "_total" == name } || (MetricWait.sum(name, in: last) ?? 0) == 0
            }
            if silent.isEmpty {
                findings.append(target.scope(.pass(Self.restartFamiliesCheck, subject: subject, expected: "the exporter's restart families count the signals",
                                                   observed: Self.workerRestartFamilies.map { "\($0) \(Self.number(MetricWait.sum($0, in: last) ?? 0))" }.joined(separator: ", "))))
            } else {
                let master = Self.restartCounts(last).sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.number($0.value))" }.joined(separator: " ")
                findings.append(target.scope(.warn(Self.restartFamiliesCheck, subject: subject,
                    expected: "every restart family the exporter declares to count the workers the signals restarted",
                    observed: "no non-zero sample of \(silent.joined(separator: ", ")) after TTIN, TTOU, HUP, USR1, QUIT and ABRT "
                        + "(\(Self.masterRestartFamily): \(master.isEmpty ? "none" : master))",
                    detail: "gunicorn_prometheus_exporter/master.py calls _safe_inc_restart(reason) without a worker_id from every signal handler; "
                        + "gunicorn_master_worker_restart_count_total is incremented only when a worker_id is given, so it never moves "
                        + "(the worker families count QUIT and ABRT, from the worker itself)")))
            }
        }
        return findings
    }

    // MARK: Processes, through exec

    /// The master: the parent of the workers `/metrics` names by `pid` (a request first, so that a worker has
    /// written its series); checked to be a gunicorn process.
    func findMaster(_ target: PodTarget) async throws -> Int {
        try await poll("a worker pid in /metrics whose parent is the gunicorn master") {
            await self.traffic(target, requests: 4)
            let exposition = try await self.scrape(target)
            let pids = Set(exposition.families.filter { $0.name.hasPrefix("gunicorn_worker_") }.flatMap(\.samples).compactMap { $0.label("pid").flatMap(Int.init) })
            guard !pids.isEmpty else { return nil }
            let script = "for p in \(pids.sorted().map(String.init).joined(separator: " ")); do "
                + "[ -r /proc/$p/status ] && pp=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status) && "
                + "tr '\\0' ' ' < /proc/$pp/cmdline | grep -q gunicorn && echo $pp; done; true"
            let parents = try await self.shell(script, target).split(whereSeparator: \.isNewline).compactMap { Int($0) }
            return parents.first
        }
    }

    /// The pids whose parent is `master`.
    func children(of master: Int, in target: PodTarget) async throws -> Set<Int> {
        let output = try await shell("grep -ls '^PPid:[[:space:]]*\(master)$' /proc/[0-9]*/status | cut -d/ -f3; true", target)
        return Set(output.split(whereSeparator: \.isNewline).compactMap { Int($0) })
    }

    func waitForChildren(of master: Int, in target: PodTarget, _ what: String, _ done: @escaping @Sendable (Set<Int>) -> Bool) async throws -> Set<Int> {
        try await poll("the master's children to be \(what)") {
            let children = try await self.children(of: master, in: target)
            return done(children) ? children : nil
        }
    }

    func signal(_ name: String, _ pid: Int, _ target: PodTarget) async throws {
        _ = try await shell("kill -\(name) \(pid)", target)
    }

    /// Runs a shell script in the container; a non-zero exit is an error naming its stderr.
    func shell(_ script: String, _ target: PodTarget) async throws -> String {
        let result = try await api.exec(pod: target.pod, namespace: namespace, container: container, command: ["sh", "-c", script], timeout: .seconds(30))
        guard result.exitCode == 0 else {
            throw Failed(description: "exec `\(script)` exited \(result.exitCode): \(result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return result.stdoutText
    }

    /// Samples the master five times over two seconds: the kernel function its main thread waits in
    /// (`/proc/<pid>/wchan`) and its children that exited and are not reaped (zombies). A gunicorn master waits in
    /// select between signals and reaps a worker as soon as SIGCHLD arrives, so a main thread in a futex wait in every
    /// sample, or a zombie child in every sample (after a wait that already took `timeout`), is a master that stopped
    /// handling signals. Nil when the master looks alive, or when it cannot be examined.
    func stalledMaster(_ master: Int, after signal: String, _ target: PodTarget) async -> Finding? {
        let script = "for i in 1 2 3 4 5; do w=$(cat /proc/\(master)/wchan 2>/dev/null); z=; "
            + "for f in $(grep -ls '^PPid:[[:space:]]*\(master)$' /proc/[0-9]*/status); do "
            + "grep -qs '^State:[[:space:]]*Z' $f && z=\"$z $(echo $f | cut -d/ -f3)\"; done; "
            + "echo \"$w|$z\"; [ $i = 5 ] || sleep 0.4; done; true"
        guard let output = try? await shell(script, target),
              let stall = Self.MasterStall(samples: output), stall.isStalled else { return nil }
        var evidence: [String] = []
        if stall.lockedSamples == stall.samples {
            evidence.append("its main thread waited on a lock (wchan \(stall.waitChannels.sorted().joined(separator: ", "))) in all \(stall.samples) samples over 2 s")
        }
        if !stall.zombies.isEmpty {
            evidence.append("worker pid \(stall.zombies.sorted()) exited and stayed unreaped (zombie) throughout")
        }
        return target.scope(.fail(Self.masterSignalsCheck, subject: "container/\(container)",
            expected: "the gunicorn master keeps handling signals: it reaps exited workers and replaces them",
            observed: "after SIG\(signal), master pid \(master) stopped handling signals: " + evidence.joined(separator: "; ")
                + ". It no longer reaps, replaces workers or handles SIGTERM; the remaining signals were not sent",
            detail: "likely a defect of gunicorn_prometheus_exporter's PrometheusMaster: handle_chld, gunicorn's SIGCHLD handler, puts a metric "
                + "on a queue.Queue, whose lock is not reentrant; a SIGCHLD during any put on that queue (two workers exiting together, or one "
                + "exiting while the HUP, TTIN, TTOU or USR1 handler queues its metric) deadlocks the main thread (`py-spy dump --pid \(master)` "
                + "in the container shows handle_chld called inside a put). "
                + "The bundled demo app replaces that queue with a reentrant queue.SimpleQueue in its on_starting hook (manifests/app/gunicorn_conf.py)"))
    }

    /// What `stalledMaster`'s samples show: one line per sample, `<wchan>|<zombie pids>`.
    struct MasterStall: Equatable {
        var samples: Int
        /// Samples whose main thread waited in a futex (a lock, or the GIL).
        var lockedSamples: Int
        var waitChannels: Set<String>
        /// Zombie children present in every sample.
        var zombies: Set<Int>

        init?(samples output: String) {
            let lines = output.split(whereSeparator: \.isNewline).map(String.init).filter { $0.contains("|") }
            guard !lines.isEmpty else { return nil }
            samples = lines.count
            var locked = 0
            var channels: Set<String> = []
            var zombies: Set<Int>?
            for line in lines {
                let parts = line.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
                let channel = parts[0].trimmingCharacters(in: .whitespaces)
                if channel.contains("futex") {
                    locked += 1
                    channels.insert(channel)
                }
                let pids = Set(parts[1].split(separator: " ").compactMap { Int($0) })
                zombies = zombies.map { $0.intersection(pids) } ?? pids
            }
            lockedSamples = locked
            waitChannels = channels
            self.zombies = zombies ?? []
        }

        var isStalled: Bool { samples >= 3 && (lockedSamples == samples || !zombies.isEmpty) }
    }

    // MARK: /metrics, through the API proxy

    func scrape(_ target: PodTarget) async throws -> Exposition {
        let bytes = try await api.proxyGet(pod: target.pod, port: target.endpoints.metrics.port, path: target.endpoints.metrics.path, namespace: namespace)
        return try ExpositionParser.parse(bytes, format: FormatDetection.sniff(bytes))
    }

    /// Concurrent requests to the app, so that every idle worker has a chance to take one.
    func traffic(_ target: PodTarget, requests: Int) async {
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<requests {
                let path = target.endpoints.trafficPaths[index % target.endpoints.trafficPaths.count]
                group.addTask { _ = try? await self.api.proxyGet(pod: target.pod, port: target.endpoints.app.port, path: path, namespace: self.namespace) }
            }
        }
    }

    /// Until every pid in `pids` has a series in `/metrics` (it answered a request), sending requests meanwhile.
    func waitServing(_ pids: Set<Int>, _ target: PodTarget) async throws {
        _ = try await poll("workers \(pids.sorted()) to serve (their pid in /metrics)") {
            await self.traffic(target, requests: 8)
            let seen = Set(try await self.scrape(target).families.flatMap(\.samples).compactMap { $0.label("pid").flatMap(Int.init) })
            return pids.isSubset(of: seen) ? true : nil
        }
    }

    /// Compares the counter series of `families` in two scrapes, series by series (its full label set), as Prometheus
    /// detects a counter reset: a series in both whose value dropped went backwards. A series missing from `after` is
    /// not a reset: the exporter stores each series in Redis with a TTL refreshed only when it is written, so a dead
    /// worker's series, or a restart counter last written a TTL ago, expires; it is counted as expired. (A sum over
    /// series would call each such expiry a drop.) A series printed twice counts once, with its larger value.
    /// Without `seriesExpire` (multiprocess files keep a dead worker's counters), a missing series went backwards to 0.
    static func counterComparison(_ before: Exposition, _ after: Exposition, families: Set<String>,
                                  seriesExpire: Bool = true) -> (backwards: [String], expired: Int) {
        func series(_ exposition: Exposition) -> [String: Double] {
            var values: [String: Double] = [:]
            for sample in exposition.families.flatMap(\.samples) where families.contains(sample.name) {
                let key = sample.name + "{" + sample.labels.sorted { $0.name < $1.name }.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
                values[key] = max(values[key] ?? -.infinity, sample.value)
            }
            return values
        }
        let old = series(before)
        let new = series(after)
        var backwards: [String] = []
        var expired = 0
        for (key, value) in old.sorted(by: { $0.key < $1.key }) {
            guard let now = new[key] else {
                if seriesExpire { expired += 1 } else { backwards.append("\(key) \(number(value)) → gone") }
                continue
            }
            if now < value { backwards.append("\(key) \(number(value)) → \(number(now))") }
        }
        return (backwards, expired)
    }

    /// `gunicorn_master_worker_restart_total` by reason. A series printed twice (the exporter's duplicate metadata
    /// blocks repeat it: its registry and its multiprocess collector) counts once; distinct series add up.
    static func restartCounts(_ exposition: Exposition) -> [String: Double] {
        var series: [[Label]: Double] = [:]
        for sample in exposition.families.flatMap(\.samples) where sample.name == masterRestartFamily && sample.label("reason") != nil {
            let labels = sample.labels.sorted { $0.name < $1.name }
            series[labels] = max(series[labels] ?? 0, sample.value)
        }
        var counts: [String: Double] = [:]
        for (labels, value) in series {
            if let reason = labels.first(where: { $0.name == "reason" })?.value { counts[reason, default: 0] += value }
        }
        return counts
    }

    /// Sends `signal` to one worker (the lowest pid): it must leave the master's children, a new child must take its
    /// place and serve, and `gunicorn_worker_restart_total{reason, worker_id}` of the signalled worker must count it
    /// (the worker writes it before it exits; Redis or its multiprocess file keeps it).
    ///
    /// A worker can instead hang in its handler: the exporter's handler writes its metrics through the Redis client,
    /// whose lock (a `threading.Lock`, not reentrant) the interrupted code may hold, when the signal lands inside a
    /// write — the kubelet's probes keep workers writing. It then deadlocks until gunicorn's master kills it at its
    /// `timeout` ("WORKER TIMEOUT (pid:N)" in the log, then SIGKILL), and the key it was writing keeps no TTL. Seen
    /// here once in 60 signals with light traffic, 8 times in 10 with one worker under steady load. That is reported
    /// as a warning (`hung`), so the Redis audit can attribute the keys left without a TTL to the `victim`, rather
    /// than as a failed deployment. The same race has a quieter outcome: the worker exits, but the handler's own write
    /// failed on the interrupted Redis connection, so its restart counter never shows (seen in CI on 2026-12-02, under
    /// load), and the interrupted write can leave a metric key without its meta twin (a `redis.meta.unpaired` failure
    /// seen once in CI). That is a warning too (`raced`); either way the caller sends the signal to a second worker.
    func workerSignal(_ signal: String, reason: String, check: String, master: Int, workers: Set<Int>, _ target: PodTarget) async throws
        -> (workers: Set<Int>, finding: Finding, victim: Int, hung: Bool, raced: Bool) {
        guard let victim = workers.min() else { throw Failed(description: "the master has no worker to signal") }
        let workerID = try await poll("the worker_id of worker pid \(victim) in /metrics") { () -> String? in
            await self.traffic(target, requests: 4)
            return try await self.scrape(target).families.flatMap(\.samples).first { $0.label("pid") == String(victim) }?.label("worker_id")
        }
        // The requests that found its worker_id leave the worker writing their metrics to Redis just after it answered:
        // a signal then lands inside a write far more often than in production (see above). A pause lets those writes
        // finish, so the hang that remains is the exporter's race with the kubelet's probes, not with kverify's own
        // requests (without it, two hangs in a row failed a sim test run on 2026-12-02).
        try await Task.sleep(for: .milliseconds(500))
        let start = ContinuousClock.now
        try await self.signal(signal, victim, target)
        let replaced = try await waitForChildren(of: master, in: target, "\(workers.count) workers, without \(victim)") {
            $0.count == workers.count && !$0.contains(victim)
        }
        let spawned = ContinuousClock.now - start
        let added = replaced.subtracting(workers)
        try await waitServing(added, target)
        let serving = ContinuousClock.now - start
        // A log that cannot be read leaves the clean path's checks to decide.
        if (try? await killedAtTimeout(victim, target)) ?? false {
            return (replaced, target.scope(.warn(check, subject: "container/\(container)",
                expected: "SIG\(signal) to a worker ends it with gunicorn_worker_restart_total{reason=\"\(reason)\"} under its worker_id; a new worker serves",
                observed: "worker pid \(victim) (\(workerID)) hung after the signal until gunicorn's master killed it "
                    + "(\"WORKER TIMEOUT (pid:\(victim))\" in the log), gone \(Self.seconds(spawned)) after the signal; pid \(added.sorted()) "
                    + "took its place, serving after \(Self.seconds(serving))",
                detail: "likely a defect of gunicorn_prometheus_exporter: its worker signal handlers write metrics through the Redis client, "
                    + "whose lock the interrupted request may hold (the signal landed inside a metric write), so the worker deadlocks; the key "
                    + "it was writing keeps no TTL (the Redis audit names it). Production meets it when gunicorn aborts a busy worker at its timeout")),
                    victim, true, true)
        }
        let counter = "gunicorn_worker_restart_total{reason=\"\(reason)\",worker_id=\"\(workerID)\"}"
        let counted: Double
        do {
            counted = try await poll("\(counter) ≥ 1") { () -> Double? in
                let value = try await self.scrape(target).families.flatMap(\.samples).filter {
                    $0.name == "gunicorn_worker_restart_total" && $0.label("reason") == reason && $0.label("worker_id") == workerID
                }.reduce(0) { $0 + $1.value }
                return value >= 1 ? value : nil
            }
        } catch let failed as Failed {
            return (replaced, target.scope(.warn(check, subject: "container/\(container)",
                expected: "SIG\(signal) to a worker ends it with \(counter) ≥ 1; a new worker serves",
                observed: "worker pid \(victim) (\(workerID)) ended \(Self.seconds(spawned)) after the signal and pid \(added.sorted()) took its "
                    + "place, serving after \(Self.seconds(serving)); but its restart was never counted: \(failed.description)",
                detail: "likely the same defect of gunicorn_prometheus_exporter as a hung worker: the signal landed inside a metric write, "
                    + "and the handler's own write to the interrupted Redis connection failed, so the worker left without counting its exit")),
                    victim, false, true)
        }
        return (replaced, target.scope(.pass(check, subject: "container/\(container)",
            expected: "SIG\(signal) to a worker ends it with gunicorn_worker_restart_total{reason=\"\(reason)\"} under its worker_id; a new worker serves",
            observed: "worker pid \(victim) (\(workerID)) ended; pid \(added.sorted()) forked \(Self.seconds(spawned)) after the signal, serving after "
                + "\(Self.seconds(serving)); restart_total{reason=\"\(reason)\"} \(Self.number(counted))")), victim, false, false)
    }

    /// Whether gunicorn's master logged that it killed `pid` at its timeout (the worker did not exit by itself).
    func killedAtTimeout(_ pid: Int, _ target: PodTarget) async throws -> Bool {
        // Every worker boot logs its whole configuration (~100 lines), so the line can sit well up the log.
        let log = try await api.logs(pod: target.pod, namespace: namespace, container: container, tailLines: 2000)
        return Self.logShowsTimeoutKill(log, pid: pid)
    }

    static func logShowsTimeoutKill(_ log: String, pid: Int) -> Bool {
        log.contains("WORKER TIMEOUT (pid:\(pid))")
    }

    /// Until `gunicorn_master_worker_restart_total{reason}` is above its value in `before`.
    func waitCounter(reason: String, above before: Exposition, _ target: PodTarget) async throws -> (before: Double, after: Double) {
        let old = Self.restartCounts(before)[reason] ?? 0
        let now = try await poll("\(Self.masterRestartFamily){reason=\"\(reason)\"} to grow above \(Self.number(old))") { () -> Double? in
            let value = Self.restartCounts(try await self.scrape(target))[reason] ?? 0
            return value > old ? value : nil
        }
        // One signal is one restart event: the counter must move by exactly one.
        guard now == old + 1 else {
            throw Failed(description: "\(Self.masterRestartFamily){reason=\"\(reason)\"} went \(Self.number(old)) → \(Self.number(now)) for one signal, expected +1")
        }
        return (old, now)
    }

    /// Calls `attempt` until it returns a value or the deadline passes; the last error or "not yet" is reported.
    func poll<T: Sendable>(_ what: String, _ attempt: @escaping @Sendable () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(100)
        var last = "not yet"
        while true {
            do {
                if let value = try await attempt() { return value }
                last = "not yet"
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                last = "\(error)"
            }
            let now = ContinuousClock.now
            guard now < deadline else { throw Failed(description: "waited \(timeout) for \(what); last: \(last)") }
            try await Task.sleep(until: min(now + pause, deadline))
            pause = min(pause * 2, .seconds(1))
        }
    }

    static func seconds(_ duration: Duration) -> String { String(format: "%.2f s", duration.seconds) }
    /// A sample value as text: whole numbers without ".0"; +Inf, NaN and values past Int's range as Swift prints them
    /// (`Int(Double)` would trap on those).
    static func number(_ value: Double) -> String {
        value.isFinite && abs(value) < 1e15 && value.rounded() == value ? String(Int(value)) : String(value)
    }
}
