import Findings
import Processes
import RESP
import RedisAudit

/// The run's Redis, reached from outside the cluster (a NodePort on a node address, or `--redis-addr`):
/// audits each pod's keys under its own prefix (the manifests give every pod `gunicorn-$(POD_NAME)`, so a
/// finding names the pod whose keys are wrong), then — once the app is gone — watches every key expire.
///
/// Decision: per-pod prefixes rather than one common prefix. `SCAN MATCH gunicorn-*` would also find other
/// runs' keys in a shared Redis, and a missing TTL could not be pinned on a pod.
public struct RedisCheck: Sendable {
    public var endpoint: RedisEndpoint
    public var ttlSeconds: Int
    public var connectTimeout: Duration
    /// The exporter's own login (`REDIS_PASSWORD`, `REDIS_DB`), so kverify reads the keys where it writes them.
    public var credentials: RedisCredentials?
    public var database: Int
    /// Workers the lifecycle phase's signals interrupted mid-write (hung and killed, or gone uncounted): their keys without a TTL are theirs.
    public var killedWriters: [Lifecycle.HungWorker] = []

    public init(endpoint: RedisEndpoint, ttlSeconds: Int, connectTimeout: Duration = .seconds(5), credentials: RedisCredentials? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.ttlSeconds = ttlSeconds
        self.connectTimeout = connectTimeout
        self.credentials = credentials
        self.database = database
    }

    /// Connects on a thread of its own: `RedisConnection.connect` blocks until the deadline.
    func connect() async throws -> RedisConnection {
        let configuration = self.configuration
        return try await runBlocking { try RedisConnection.connect(configuration) }
    }

    private var configuration: RedisConnection.Configuration {
        RedisConnection.Configuration(endpoint: endpoint, credentials: credentials, database: database,
                                      connectTimeout: connectTimeout, operationTimeout: .seconds(10))
    }

    /// The keyspace audit for every pod's prefix.
    /// - Throws: `RedisError` when Redis cannot be reached or fails mid-scan.
    public func audit(_ targets: [PodTarget]) async throws -> [Finding] {
        var findings: [Finding] = []
        // One connection for every prefix: a connection (and its login) per pod made this phase 1.8–4.3 s of a
        // 500-pod run through the sim's NodePort. An error mid-audit ends the whole audit, so it is never reused
        // out of step.
        var shared: RedisConnection?
        defer { shared?.close() }
        for (target, sharers) in Self.byPrefix(targets) {
            if sharers.count > 1, let prefix = target.keyPrefix {
                // With one prefix for every pod, a finding about the keys cannot name the pod that wrote them.
                findings.append(.pass("redis.prefix.shared", subject: "\(prefix):*", expected: "a key prefix per pod, or one shared",
                                      observed: "shared by \(sharers.count) pods (\(sharers.map(\.pod).joined(separator: ", "))): audited as a "
                                        + "whole; findings on these keys cannot name the pod that wrote them"))
            }
            guard let prefix = target.keyPrefix else {
                findings.append(.fail("redis.prefix", subject: target.subject, expected: "REDIS_KEY_PREFIX on the app container",
                                      observed: "none set"))
                continue
            }
            if shared == nil { shared = try await connect() }
            guard let connection = shared else { continue }
            let auditor = RedisAuditor(connection: connection, options: RedisAuditOptions(prefix: prefix, ttlSeconds: ttlSeconds,
                                                                                           killedWriters: killedWriterReasons(of: sharers)))
            var result = try await auditor.audit()
            // The exporter creates a key's hash fields in separate writes while probes keep the app busy, so an audit
            // can read a hash being created (seen once in a fresh-clone CI run: 1 of 67 hashes short of a field).
            // Audited again once; a hash still incomplete then is a failure, one that completed is a warning.
            let partial = result.findings.filter { $0.checkID == AuditCheck.hashMissingField && $0.status == .fail }
            if !partial.isEmpty {
                try await Task.sleep(for: .milliseconds(500))
                result = try await auditor.audit()
                if !result.findings.contains(where: { $0.checkID == AuditCheck.hashMissingField && $0.status == .fail }) {
                    findings.append(.warn(AuditCheck.hashMissingField, subject: target.subject, expected: "complete hashes on every audit",
                                          observed: "incomplete on one audit, complete on the next: \(partial[0].observed ?? "")",
                                          detail: "the exporter writes a new key's fields one at a time"))
                }
            }
            findings += sharers.count > 1 ? result.findings : scoped(result.findings, target)
        }
        return findings
    }

    /// Each distinct prefix once, with the pods that write under it (a pod without a prefix stands alone).
    static func byPrefix(_ targets: [PodTarget]) -> [(PodTarget, [PodTarget])] {
        var groups: [(PodTarget, [PodTarget])] = []
        for target in targets {
            if let prefix = target.keyPrefix, let index = groups.firstIndex(where: { $0.0.keyPrefix == prefix }) {
                groups[index].1.append(target)
            } else {
                groups.append((target, [target]))
            }
        }
        return groups
    }

    /// How many keys are left under `prefix`, and the longest remaining TTL among them (one pass of SCAN + PTTL).
    public func keysLeft(prefix: String) async throws -> (alive: Int, longestMilliseconds: Int64?) {
        let connection = try await connect()
        defer { connection.close() }
        let auditor = RedisAuditor(connection: connection, options: RedisAuditOptions(prefix: prefix, ttlSeconds: ttlSeconds))
        let sample = try await auditor.observeExpiry(deadline: .now).samples.first
        return (sample?.alive ?? 0, sample?.maxTTLMilliseconds)
    }

    /// Redis' own clock (`TIME`), in seconds: the exporter stamps its hashes with it.
    public func serverTime() async throws -> Double {
        let configuration = self.configuration
        let endpoint = self.endpoint
        return try await runBlocking {
            let connection = try RedisConnection.connect(configuration)
            defer { connection.close() }
            let reply = try connection.command(["TIME"])
            guard case .array(let parts) = reply, parts.count == 2, let seconds = parts[0].string.flatMap(Double.init),
                  let micros = parts[1].string.flatMap(Double.init) else {
                throw RedisError(.protocolViolation, address: "\(endpoint)", "TIME answered \(reply), not [seconds, microseconds]")
            }
            return seconds + micros / 1_000_000
        }
    }

    /// Watches every pod's keys expire (call after the writers are gone), all prefixes at once; with the writers
    /// gone, "no write seen" is expected and not a warning.
    /// - Parameter shutdownSince: `serverTime()` when the app was told to stop: keys without a TTL written after it
    ///   are reported as written during shutdown (`RedisAuditOptions.shutdownSince`).
    public func observeExpiry(_ targets: [PodTarget], timeout: Duration? = nil, shutdownSince: Double? = nil) async throws -> [Finding] {
        let wait = timeout ?? .seconds(ttlSeconds * 2 + 10)
        let deadline = ContinuousClock.now + wait
        return try await withThrowingTaskGroup(of: [Finding].self) { group in
            for (target, sharers) in Self.byPrefix(targets) {
                guard let prefix = target.keyPrefix else { continue }
                group.addTask {
                    let connection = try await connect()
                    defer { connection.close() }
                    let auditor = RedisAuditor(connection: connection, options: RedisAuditOptions(prefix: prefix, ttlSeconds: ttlSeconds,
                                                                                           killedWriters: killedWriterReasons(of: sharers),
                                                                                           shutdownSince: shutdownSince))
                    let timeline = try await auditor.observeExpiry(deadline: deadline)
                    // The app is gone before this starts, so "no write seen" is the expected state, not a warning
                    // about traffic; the refresh itself shows in the audit's TTL distribution (taken while it ran).
                    let findings = timeline.findings(prefix: prefix, writersStopped: true)
                    return sharers.count > 1 ? findings : scoped(findings, target)
                }
            }
            var findings: [Finding] = []
            for try await part in group { findings += part }
            return findings.sorted { $0.subject < $1.subject }
        }
    }

    /// Why each killed worker of the pods writing under one prefix was killed, by pid. A pid names a process only
    /// within its pod: under a prefix several pods share, another pod's worker may have the same pid, which the
    /// reason then says.
    func killedWriterReasons(of pods: [PodTarget]) -> [Int: String] {
        var reasons: [Int: [String]] = [:]
        for worker in killedWriters where pods.contains(where: { $0.pod == worker.pod }) {
            reasons[worker.pid, default: []].append(worker.reason)
        }
        let shared = pods.count > 1 ? " (the prefix is shared by \(pods.count) pods: a worker of another pod with the same pid cannot be told apart)" : ""
        return reasons.mapValues { $0.joined(separator: "; ") + shared }
    }

    private func scoped(_ findings: [Finding], _ target: PodTarget) -> [Finding] {
        findings.map(target.scope)
    }
}
