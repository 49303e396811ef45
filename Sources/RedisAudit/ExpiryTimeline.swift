import Findings

/// What `RedisAuditor.observeExpiry(deadline:)` saw: keys alive over time, when writes were last seen and when
/// the last key disappeared. Times are seconds since the observation started.
public struct ExpiryTimeline: Sendable, Hashable, Codable {
    /// One pass over the keyspace.
    public struct Sample: Sendable, Hashable, Codable {
        /// When the pass started.
        public var seconds: Double
        /// Keys under the prefix that still existed.
        public var alive: Int
        public var withoutTTL = 0
        public var minTTLMilliseconds: Int64?
        public var maxTTLMilliseconds: Int64?
        /// A key's TTL was extended or a key appeared since the previous sample: something wrote.
        public var refreshed = false

        public init(seconds: Double, alive: Int) {
            self.seconds = seconds
            self.alive = alive
        }
    }

    public var configuredTTLSeconds: Int?
    public var samples: [Sample] = []
    public var keysAtStart = 0
    /// The last sample that detected a write.
    public var lastWriteSeconds: Double?
    /// The last sample in which a key existed.
    public var lastKeySeenSeconds: Double?
    /// The first sample with no key left; nil if the deadline came first.
    public var emptySeconds: Double?
    /// When the deadline ended the observation with keys left.
    public var deadlineSeconds: Double?
    /// First keys still alive at the deadline, with their TTL, and how many there were.
    public var stillAlive: [String] = []
    public var stillAliveCount = 0
    /// Samples whose refreshed TTL was clearly below the configured TTL, and the lowest such TTL.
    public var refreshesBelowTTL = 0
    public var lowestRefreshedTTLMilliseconds: Int64?
    /// Keys without a TTL of writers known to have been killed mid-write (`RedisAuditOptions.killedWriters`), as
    /// of the last sample: not counted as alive, since they never expire; and why each writer was killed.
    public var killedWriterKeys: [String] = []
    public var killedWriterKeyCount = 0
    public var killedWriters: [String] = []
    /// Keys without a TTL written after the writers were told to stop (`RedisAuditOptions.shutdownSince`), as of
    /// the last sample: not counted as alive.
    public var shutdownWriteKeys: [String] = []
    public var shutdownWriteKeyCount = 0
    /// Allowed delay between a key's TTL running out and kverify seeing it gone.
    public var slackSeconds = 1.0

    public init(configuredTTLSeconds: Int?) {
        self.configuredTTLSeconds = configuredTTLSeconds
    }

    /// The timeline as text: samples where something changed, at most `limit` of them.
    public func rendered(limit: Int = 24) -> String {
        var shown: [Sample] = []
        for (index, sample) in samples.enumerated() {
            let previous = index > 0 ? samples[index - 1] : nil
            if previous == nil || index == samples.count - 1 || sample.refreshed || sample.alive != previous?.alive {
                shown.append(sample)
            }
        }
        let describe: (Sample) -> String = { sample in
            var text = "t=\(sample.seconds.formatted(decimals: 1))s \(sample.alive)"
            if sample.refreshed { text += " (written)" }
            return text
        }
        if shown.count > limit {
            let head = shown.prefix(limit / 2).map(describe)
            let tail = shown.suffix(limit / 2).map(describe)
            return (head + ["…"] + tail).joined(separator: ", ")
        }
        return shown.map(describe).joined(separator: ", ")
    }

    /// `redis.expiry.refreshed`, `redis.expiry.all-expired` and `redis.expiry.within-ttl`; the warnings
    /// `redis.expiry.killed-writer` and `redis.expiry.shutdown-write` for keys without a TTL that were not waited for.
    /// - Parameter writersStopped: the writers were stopped on purpose before the observation began (the pattern
    ///   run deletes the app first), so "no write seen" is the expected state and not reported.
    public func findings(prefix: String, writersStopped: Bool = false) -> [Finding] {
        let subject = "\(prefix):*"
        let timelineText = "keys alive: " + rendered()
        var findings: [Finding] = []

        // While writes flow, TTLs are reset to the configured value.
        if let lastWrite = lastWriteSeconds {
            let writes = samples.filter(\.refreshed).count
            if refreshesBelowTTL > 0, let ttl = configuredTTLSeconds, let lowest = lowestRefreshedTTLMilliseconds {
                findings.append(.fail(
                    AuditCheck.expiryRefreshed, subject: subject, expected: "writes reset TTLs to ≈\(ttl) s",
                    observed: "\(refreshesBelowTTL) of \(writes) samples with writes had a longest TTL of only \(formatMilliseconds(lowest))",
                    detail: "REDIS_TTL_SECONDS differs from --ttl, or only some keys are refreshed"))
            } else {
                findings.append(.pass(
                    AuditCheck.expiryRefreshed, subject: subject,
                    expected: configuredTTLSeconds.map { "writes reset TTLs to ≈\($0) s" } ?? "writes refresh TTLs",
                    observed: "writes seen in \(writes) sample\(plural(writes)), last at t=\(lastWrite.formatted(decimals: 1)) s"))
            }
        } else if !writersStopped {
            findings.append(.warn(
                AuditCheck.expiryRefreshed, subject: subject, expected: "TTLs refreshed while traffic flows",
                observed: "no write seen during the observation",
                detail: "refresh not verified: keep traffic flowing when kverify starts to observe it"))
        }

        // Keys without a TTL that were explained and so not waited for: a warning each kind, naming them.
        func notWaitedFor(_ check: String, count: Int, keys: [String], what: String, detail: String) {
            guard count > 0 else { return }
            let more = count - keys.count
            findings.append(.warn(
                check, subject: subject, expected: "every key gone once writes stop",
                observed: "\(count) key\(plural(count)) without a TTL \(what), not waited for: " + keys.joined(separator: ", ")
                    + (more > 0 ? " and \(more) more" : ""),
                detail: detail))
        }
        notWaitedFor(AuditCheck.expiryKilledWriter, count: killedWriterKeyCount, keys: killedWriterKeys, what: "left by an interrupted writer",
                     detail: killedWriters.joined(separator: "; ") + ". These keys never expire: delete them (redis-cli DEL)")
        notWaitedFor(AuditCheck.expiryShutdownWrite, count: shutdownWriteKeyCount, keys: shutdownWriteKeys, what: "written while the app shut down",
                     detail: "the writer stopped between a write and its EXPIRE during shutdown; with gunicorn_prometheus_exporter, its master "
                        + "records signal metrics (reason=\"chld\" as the workers exit) from a daemon thread the interpreter kills at exit. "
                        + "These keys never expire: delete them (redis-cli DEL), and expect one per pod stop until the exporter is fixed")

        // Every key disappears once writes stop.
        if keysAtStart == 0 {
            findings.append(.warn(
                "redis.expiry.all-expired", subject: subject, expected: "keys to observe",
                observed: "no key under \(subject) when the observation started", detail: "expiry not observed; send traffic first"))
            return findings
        }
        let lastWrite = lastWriteSeconds ?? 0
        if let empty = emptySeconds {
            let seen = lastKeySeenSeconds ?? 0
            findings.append(.pass(
                "redis.expiry.all-expired", subject: subject, expected: "every key gone once writes stop",
                observed: "\(keysAtStart) keys at start; last key seen at t=\(seen.formatted(decimals: 1)) s, none left at t=\(empty.formatted(decimals: 1)) s"))
            if let ttl = configuredTTLSeconds {
                let budget = Double(ttl) + slackSeconds
                let took = empty - lastWrite
                let status: Finding.Status = took <= budget ? .pass : .fail
                findings.append(Finding(
                    checkID: "redis.expiry.within-ttl", subject: subject, status: status,
                    expected: "gone within TTL \(ttl) s + \(slackSeconds.formatted(decimals: 1)) s of the last write",
                    observed: "gone \(took.formatted(decimals: 1)) s after the last write seen (t=\(lastWrite.formatted(decimals: 1)) s)",
                    detail: status == .pass ? nil : "keys outlived their TTL: \(timelineText)"))
            }
        } else {
            let stillWriting = (deadlineSeconds ?? 0) - lastWrite < Double(configuredTTLSeconds ?? 0) && lastWriteSeconds != nil
            let more = stillAliveCount - stillAlive.count
            findings.append(.fail(
                "redis.expiry.all-expired", subject: subject, expected: "every key gone before the deadline",
                observed: "\(stillAliveCount) key\(plural(stillAliveCount)) alive at the deadline (t=\((deadlineSeconds ?? 0).formatted(decimals: 1)) s): "
                    + stillAlive.joined(separator: ", ") + (more > 0 ? " and \(more) more" : ""),
                detail: (stillWriting
                    ? "writes were still refreshing TTLs (last at t=\(lastWrite.formatted(decimals: 1)) s): stop traffic, or raise --expiry-timeout; "
                    : "")
                    + (stillAlive.contains { $0.hasSuffix(" (no TTL)") }
                        // Seen with the real exporter: it writes HSET and EXPIRE as separate commands, and a worker
                        // hung in its signal handler mid-write is killed by gunicorn in between (see Lifecycle).
                        ? "a key without TTL (PTTL -1) never expires; a writer stopped between its write and its EXPIRE "
                            + "(killed at shutdown) leaves one behind — check the app's shutdown path; "
                        : "")
                    + timelineText))
        }
        return findings
    }
}
