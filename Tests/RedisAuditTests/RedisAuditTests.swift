import Findings
import Foundation
import KVerifyTestSupport
import RESP
import RedisAudit
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Redis audit on a real redis-server")
struct RedisAuditTests {
    struct Defect: Sendable, CustomTestStringConvertible {
        var name: String
        var commands: [[String]]
        var checkID: String
        var subject: String = "gunicorn:*"
        var status: Finding.Status
        var observed: String
        var testDescription: String { name }
    }

    static let hash9 = Keyspace.digest(9)

    static let defects: [Defect] = [
        Defect(name: "keys without TTL", commands: Keyspace.pair("counter", 9, ttl: nil),
               checkID: "redis.ttl.missing", status: .fail,
               observed: "2 keys have no TTL (PTTL -1): "),
        Defect(name: "a TTL above the configured one", commands: Keyspace.pair("counter", 9, ttl: 900),
               checkID: "redis.ttl.above-configured", status: .fail,
               observed: "2 keys above: "),
        Defect(name: "an exporter-shaped key that is not a hash",
               commands: [["SET", Keyspace.metric("counter", 9), "1", "EX", "100"]],
               checkID: "redis.key.not-hash", status: .fail,
               observed: "1 key of another type: gunicorn:counter:4242:metric:\(hash9) (string)"),
        Defect(name: "a key of another shape under the prefix",
               commands: [["SET", "gunicorn:lock", "1", "EX", "100"]],
               checkID: "redis.layout.unexpected-key", status: .warn,
               observed: "1 key of another shape: gunicorn:lock (has 1 segment after the prefix"),
        Defect(name: "a metric key without its meta twin",
               commands: [["HSET", Keyspace.metric("counter", 9), "value", "1", "timestamp", "0"],
                          ["EXPIRE", Keyspace.metric("counter", 9), "100"]],
               checkID: "redis.meta.unpaired", status: .fail,
               observed: "1 metric key without meta: gunicorn:counter:4242:metric:\(hash9) (no gunicorn:counter:4242:meta:\(hash9))"),
        Defect(name: "a meta key without its metric",
               commands: [["HSET", Keyspace.meta("counter", 9), "original_key", "x"], ["EXPIRE", Keyspace.meta("counter", 9), "100"]],
               checkID: "redis.meta.unpaired", status: .warn,
               observed: "1 meta key without metric: gunicorn:counter:4242:meta:\(hash9)"),
        Defect(name: "a metric hash without timestamp and with a bad value",
               commands: Keyspace.pair("counter", 9) + [["HDEL", Keyspace.metric("counter", 9), "timestamp"],
                                                        ["HSET", Keyspace.metric("counter", 9), "value", "NaNa"]],
               checkID: "redis.hash.missing-field", status: .fail,
               observed: "gunicorn:counter:4242:metric:\(hash9) (missing timestamp, value \"NaNa\" is not a number)"),
        Defect(name: "a metric hash whose timestamp is not a number",
               commands: Keyspace.pair("counter", 9) + [["HSET", Keyspace.metric("counter", 9), "timestamp", "not-a-time"]],
               checkID: "redis.hash.missing-field", status: .fail,
               observed: "gunicorn:counter:4242:metric:\(hash9) (timestamp \"not-a-time\" is not a number)"),
        Defect(name: "a meta hash without original_key",
               commands: Keyspace.pair("counter", 9) + [["HDEL", Keyspace.meta("counter", 9), "original_key"]],
               checkID: "redis.hash.missing-field", status: .fail,
               observed: "gunicorn:counter:4242:meta:\(hash9) (missing original_key)"),
    ]

    @Test("a healthy keyspace passes every check, with exact counts")
    func healthy() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.healthy(ttl: 300) + [["SET", "unrelated", "1"]], on: connection)
            let result = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 300)).audit()
            #expect(result.findings.filter { $0.status != .pass } == [])
            #expect(result.summary.keysScanned == 6)
            #expect(result.summary.keysByType == [
                "counter": .init(metric: 1, meta: 1), "histogram": .init(metric: 1, meta: 1), "gauge_all": .init(metric: 1, meta: 1),
            ])
            #expect(result.summary.processes == 1)
            #expect(result.summary.sampledHashes == 6)
            #expect((result.summary.maxTTLMilliseconds ?? 0) <= 300_000)
            #expect((result.summary.minTTLMilliseconds ?? 0) > 290_000)
            #expect(result.summary.ttlQuartiles == [0, 0, 0, 6])
            #expect(result.findings.first("redis.ttl.missing")?.observed == "all 6 keys have one")
            #expect(result.findings.first("redis.keys.present-per-type", subject: "gunicorn:gauge_*:*")?.observed
                == "1 metric + 1 meta keys (gauge_all)")
        }
    }

    @Test("a configured TTL too large for milliseconds saturates instead of trapping")
    func largestTTL() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.pair("counter", 1), on: connection)
            let result = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: .max)).audit()
            #expect(result.summary.keysAboveTTL == 0)
            #expect(result.summary.ttlQuartiles == [2, 0, 0, 0])
            #expect(result.findings.first("redis.ttl.above-configured")?.status == .pass)
        }
    }

    @Test("a PTTL too large to scale by 4 lands in the top quarter and above the TTL, without trapping")
    func largestPTTL() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            let key = Keyspace.metric("counter", 1)
            try Keyspace.run(Keyspace.pair("counter", 1) + [["PEXPIRE", key, "3000000000000000000"]], on: connection)
            let result = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 300)).audit()
            #expect(result.summary.keysAboveTTL == 1)
            #expect(result.summary.ttlQuartiles == [0, 0, 0, 2])
            #expect(result.findings.first("redis.ttl.above-configured")?.observed?.contains(key) == true)
        }
    }

    @Test("each defect is a precise finding naming the key", arguments: defects)
    func defect(_ defect: Defect) async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.healthy() + defect.commands, on: connection)
            let result = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 300)).audit()
            let finding = try #require(result.findings.first { $0.checkID == defect.checkID && $0.status != .pass })
            #expect(finding.status == defect.status)
            #expect(finding.subject == defect.subject)
            #expect(finding.observed?.contains(defect.observed) == true, "\(finding.observed ?? "nil")")
            // Nothing else is reported as broken.
            #expect(result.findings.filter { $0.status != .pass && $0.checkID != defect.checkID } == [])
        }
    }

    @Test("an empty keyspace or a missing type fails presence, naming what is missing")
    func presence() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            let empty = try await RedisAuditor(connection: connection).audit()
            #expect(empty.findings.map(\.checkID) == ["redis.keys.present-per-type"])
            #expect(empty.findings.first?.status == .fail)
            #expect(empty.findings.first?.observed == "no exporter keys")

            try Keyspace.run(Keyspace.pair("counter", 1) + Keyspace.pair("gauge_all", 2), on: connection)
            let partial = try await RedisAuditor(connection: connection).audit()
            #expect(partial.findings.failures.map(\.subject) == ["gunicorn:histogram:*"])
        }
    }

    @Test("another prefix and another database are separate keyspaces")
    func prefixAndDatabase() async throws {
        try await RedisServerFixture.with { redis in
            let db2 = try Keyspace.connect(redis, database: 2)
            try Keyspace.run(Keyspace.healthy().map { $0.map { $0.replacingOccurrences(of: "gunicorn:", with: "gunicorn-ds:") } }, on: db2)
            let other = try await RedisAuditor(connection: db2, options: RedisAuditOptions(prefix: "gunicorn-ds:")).audit()
            #expect(other.findings.failures == [])
            #expect(other.summary.layoutKeys == 6)
            let db0 = try await RedisAuditor(connection: try Keyspace.connect(redis), options: RedisAuditOptions(prefix: "gunicorn-ds")).audit()
            #expect(db0.summary.keysScanned == 0)
        }
    }

    @Test("pairing gives the same answer whether twins are matched in memory or checked with EXISTS", arguments: [0, 1, 200_000])
    func boundedPairing(memory: Int) async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.load(pairs: 600, on: connection)
            try Keyspace.run(
                [["DEL", Keyspace.meta("counter", pid: 1000, 0)], ["DEL", Keyspace.meta("counter", pid: 1003, 3)],
                 ["DEL", Keyspace.metric("histogram", pid: 1001, 1)]], on: connection)
            let options = RedisAuditOptions(ttlSeconds: 300, scanCount: 25, pairingMemory: memory)
            let result = try await RedisAuditor(connection: connection, options: options).audit()
            #expect(result.summary.keysScanned == 1197)
            #expect(result.summary.metricKeysWithoutMeta == 2)
            #expect(result.summary.metaKeysWithoutMetric == 1)
            let finding = try #require(result.findings.first("redis.meta.unpaired"))
            #expect(finding.status == .fail)
            #expect(finding.observed?.contains(Keyspace.metric("counter", pid: 1003, 3)) == true)
        }
    }

    @Test("a keyspace larger than one batch streams through in many SCAN batches with exact counts")
    func streams() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.load(pairs: 15_000, on: connection)
            let auditor = RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 300, scanCount: 500))
            var batches = 0
            auditor.onBatch = { _ in batches += 1 }
            let result = try await auditor.audit()
            #expect(result.summary.keysScanned == 30_000)
            #expect(result.summary.keysByType["counter"] == .init(metric: 5000, meta: 5000))
            #expect(result.summary.processes == 4)
            #expect(result.summary.sampledHashes == 100)
            #expect(batches > 10)
            #expect(result.summary.scanCalls == batches)
            #expect(result.findings.failures == [])
        }
    }

    @Test("a few keys without TTL among 100,000 are each named, whichever pass finds them", arguments: [false, true])
    func fewKeysWithoutTTL(otherKeyInDatabase: Bool) async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.load(pairs: 50_000, on: connection)
            let persisted = [
                Keyspace.metric("counter", pid: 1000, 0), Keyspace.meta("histogram", pid: 1002, 12_346),
                Keyspace.metric("gauge_all", pid: 1002, 30_002), Keyspace.meta("counter", pid: 1003, 49_995),
            ]
            // A string key under the prefix, also without TTL: only the pass over other types can see it.
            var commands = persisted.map { ["PERSIST", $0] }
            if otherKeyInDatabase { commands.append(["SET", "gunicorn:lock", "1"]) }
            try Keyspace.run(commands, on: connection)
            let result = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 300)).audit()
            let named = persisted + (otherKeyInDatabase ? ["gunicorn:lock"] : [])
            #expect(result.summary.keysScanned == 100_000 + (otherKeyInDatabase ? 1 : 0))
            #expect(result.summary.keysWithoutTTL == named.count)
            #expect(result.summary.typesProvenByCount == !otherKeyInDatabase)
            let finding = try #require(result.findings.first("redis.ttl.missing"))
            #expect(finding.status == .fail)
            for key in named { #expect(finding.observed?.contains(key) == true, "\(key) not named in \(finding.observed ?? "nil")") }
            #expect(result.findings.filter { $0.status == .fail }.map(\.checkID) == ["redis.ttl.missing"])
        }
    }

    @Test("a server killed mid-scan ends the audit with a closed-connection error, not a hang")
    func killedMidScan() async throws {
        let redis = try await RedisServerFixture()
        defer { redis.stop() }
        let connection = try Keyspace.connect(redis)
        try Keyspace.load(pairs: 5_000, on: connection)
        let auditor = RedisAuditor(connection: connection, options: RedisAuditOptions(scanCount: 100))
        var scannedAtKill = 0
        auditor.onBatch = { scanned in
            if scannedAtKill == 0 {
                scannedAtKill = scanned
                kill(redis.pid, SIGKILL)
            }
        }
        await #expect {
            _ = try await auditor.audit()
        } throws: { error in
            let error = error as? RedisError
            return error?.kind == .closed && error?.message.contains("SCAN batch") == true
        }
        #expect(scannedAtKill > 0 && scannedAtKill < 10_000)
    }

    @Test("a command the ACL user may not run is an authentication error naming command and key")
    func permissionDenied() async throws {
        let redis = try await RedisServerFixture(aclUsers: [("auditor", "acl-secret")])
        defer { redis.stop() }
        let admin = try Keyspace.connect(redis)
        try Keyspace.run(Keyspace.healthy() + [["ACL", "SETUSER", "auditor", "-pttl"]], on: admin)
        let connection = try RedisConnection.connect(RedisConnection.Configuration(
            endpoint: RedisEndpoint(host: "127.0.0.1", port: redis.port),
            credentials: RedisCredentials(username: "auditor", password: "acl-secret")))
        await #expect {
            _ = try await RedisAuditor(connection: connection).audit()
        } throws: { error in
            let error = error as? RedisError
            return error?.kind == .authentication && error?.message.contains("PTTL gunicorn:") == true
                && error?.message.contains("failed: NOPERM") == true
        }
    }
}

@Suite("Expiry observation on a real redis-server")
struct ExpiryObservationTests {
    @Test("writes are seen as refreshes, then every key expires within TTL + slack")
    func lifecycle() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            let writer = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.healthy(ttl: 2), on: connection)
            let options = RedisAuditOptions(ttlSeconds: 2, pollInterval: .milliseconds(100), expirySlack: .seconds(3))
            let auditor = RedisAuditor(connection: connection, options: options)
            var samples = 0
            // Keep "traffic" flowing for the first three samples, then stop writing.
            auditor.onSample = { _ in
                samples += 1
                if samples <= 3 { try? Keyspace.run(Keyspace.healthy(ttl: 2), on: writer) }
            }
            let timeline = try await auditor.observeExpiry(deadline: .now + .seconds(30))
            #expect(timeline.keysAtStart == 6)
            #expect(timeline.samples.first?.alive == 6)
            #expect(timeline.samples.last?.alive == 0)
            #expect(timeline.samples.contains { $0.refreshed })
            let lastWrite = try #require(timeline.lastWriteSeconds)
            let empty = try #require(timeline.emptySeconds)
            #expect(empty > lastWrite)
            let findings = timeline.findings(prefix: "gunicorn")
            #expect(findings.map(\.checkID) == ["redis.expiry.refreshed", "redis.expiry.all-expired", "redis.expiry.within-ttl"])
            #expect(findings.allSatisfy { $0.status == .pass }, "\(findings)")
            #expect(timeline.rendered().hasPrefix("t=0.0s 6"))
            #expect(timeline.rendered().hasSuffix(" 0"))
        }
    }

    @Test("TTLs refreshed to less than the configured TTL fail the refresh check")
    func refreshedTooShort() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            let writer = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.healthy(ttl: 1), on: connection)
            let auditor = RedisAuditor(
                connection: connection, options: RedisAuditOptions(ttlSeconds: 60, pollInterval: .milliseconds(100)))
            var samples = 0
            auditor.onSample = { _ in
                samples += 1
                if samples <= 2 { try? Keyspace.run(Keyspace.healthy(ttl: 1), on: writer) }
            }
            let timeline = try await auditor.observeExpiry(deadline: .now + .seconds(30))
            let refreshed = try #require(timeline.findings(prefix: "gunicorn").first("redis.expiry.refreshed"))
            #expect(refreshed.status == .fail)
            #expect(refreshed.observed?.contains("had a longest TTL of only") == true)
        }
    }

    @Test("keys without TTL are still alive at the deadline and are named")
    func neverExpires() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.healthy(ttl: 300) + Keyspace.pair("counter", 9, ttl: nil), on: connection)
            let auditor = RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 300, listLimit: 3))
            let timeline = try await auditor.observeExpiry(deadline: .now + .milliseconds(300))
            #expect(timeline.emptySeconds == nil)
            #expect(timeline.stillAliveCount == 8)
            let findings = timeline.findings(prefix: "gunicorn")
            let expired = try #require(findings.first("redis.expiry.all-expired"))
            #expect(expired.status == .fail)
            #expect(expired.observed?.hasPrefix("8 keys alive at the deadline") == true)
            #expect(expired.observed?.contains("and 5 more") == true)
            #expect(findings.first("redis.expiry.refreshed")?.status == .warn)
        }
    }

    @Test("a key left without TTL is named as never expiring, with the non-atomic write as its likely cause")
    func leftWithoutTTL() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.pair("counter", 4, ttl: nil), on: connection)
            let auditor = RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 30))
            let timeline = try await auditor.observeExpiry(deadline: .now + .milliseconds(300))
            let expired = try #require(timeline.findings(prefix: "gunicorn").first("redis.expiry.all-expired"))
            #expect(expired.status == .fail)
            #expect(expired.observed?.contains("(no TTL)") == true, "\(expired)")
            #expect(expired.detail?.contains("never expires") == true, "\(expired)")
        }
    }

    @Test("an empty keyspace has nothing to observe: a warning, not a pass")
    func nothingToObserve() async throws {
        try await RedisServerFixture.with { redis in
            let auditor = RedisAuditor(connection: try Keyspace.connect(redis))
            let timeline = try await auditor.observeExpiry(deadline: .now + .seconds(5))
            #expect(timeline.samples.count == 1)
            #expect(timeline.findings(prefix: "gunicorn").first("redis.expiry.all-expired")?.status == .warn)
        }
    }

    /// A worker killed between a write and its EXPIRE (gunicorn's kill of a worker hung in the exporter's signal
    /// handler) leaves a key without TTL, and may leave it without its twin.
    static func killedWriterKeyspace() -> [[String]] {
        Keyspace.healthy(ttl: 300)
            + [["HSET", Keyspace.metric("gauge_all", pid: 777, 5), "value", "1.0", "timestamp", "0.0", "updated_at", "1700000000.5"]]
            + Keyspace.pair("counter", pid: 778, 6, ttl: nil)
    }

    @Test("keys without TTL of a writer known to be killed mid-write are a warning naming it; another writer's still fail")
    func killedWriterKeys() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.run(Self.killedWriterKeyspace(), on: connection)
            let options = RedisAuditOptions(ttlSeconds: 300, killedWriters: [777: "worker pid 777 hung on SIGQUIT"])
            let result = try await RedisAuditor(connection: connection, options: options).audit()
            let killed = try #require(result.findings.first(AuditCheck.ttlKilledWriter))
            #expect(killed.status == .warn)
            #expect(killed.observed == "1 key without a TTL (PTTL -1) written by an interrupted writer: \(Keyspace.metric("gauge_all", pid: 777, 5))")
            #expect(killed.detail?.hasPrefix("worker pid 777 hung on SIGQUIT.") == true, "\(killed)")
            // Pid 778 was not killed: its two keys without TTL are the exporter's failure, as before.
            let missing = try #require(result.findings.first("redis.ttl.missing"))
            #expect(missing.status == .fail)
            #expect(missing.observed?.hasPrefix("2 keys have no TTL (PTTL -1): ") == true, "\(missing)")
            #expect(missing.observed?.contains(":777:") == false)
            // The killed writer's metric key has no meta twin: not judged as an unpaired key.
            #expect(result.findings.filter { $0.checkID == "redis.meta.unpaired" && $0.status != .pass } == [])
            #expect(result.summary.keysWithoutTTLOfKilledWriters == 1)
            #expect(result.summary.keysWithoutTTL == 2)

            // Without the killed writer named, the same key is a failure and an unpaired metric key.
            let plain = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 300)).audit()
            #expect(plain.findings.first("redis.ttl.missing")?.observed?.hasPrefix("3 keys have no TTL") == true)
            #expect(plain.findings.first("redis.meta.unpaired")?.status == .fail)
        }
    }

    @Test("the expiry observation does not wait for a killed writer's keys without TTL, and names them")
    func killedWriterExpiry() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            try Keyspace.run(Keyspace.healthy(ttl: 1)
                + [["HSET", Keyspace.metric("gauge_all", pid: 777, 5), "value", "1.0", "timestamp", "0.0", "updated_at", "1700000000.5"]], on: connection)
            let options = RedisAuditOptions(ttlSeconds: 1, pollInterval: .milliseconds(100), killedWriters: [777: "worker pid 777 hung on SIGABRT"])
            let timeline = try await RedisAuditor(connection: connection, options: options).observeExpiry(deadline: .now + .seconds(30))
            #expect(timeline.keysAtStart == 6)
            #expect(timeline.emptySeconds != nil)
            let findings = timeline.findings(prefix: "gunicorn", writersStopped: true)
            #expect(findings.first("redis.expiry.all-expired")?.status == .pass, "\(findings)")
            let killed = try #require(findings.first("redis.expiry.killed-writer"))
            #expect(killed.status == .warn)
            #expect(killed.observed == "1 key without a TTL left by an interrupted writer, not waited for: \(Keyspace.metric("gauge_all", pid: 777, 5))")
            #expect(killed.detail?.hasPrefix("worker pid 777 hung on SIGABRT.") == true)

            // Unnamed, the same key is still alive at the deadline: a failure that names it.
            try Keyspace.run(Keyspace.healthy(ttl: 1), on: connection)
            let plain = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 1, pollInterval: .milliseconds(100)))
                .observeExpiry(deadline: .now + .seconds(3))
            let stuck = try #require(plain.findings(prefix: "gunicorn", writersStopped: true).first("redis.expiry.all-expired"))
            #expect(stuck.status == .fail)
            #expect(stuck.observed?.contains(":777:metric:") == true, "\(stuck)")
        }
    }

    @Test("a key without TTL written after the app was told to stop is a shutdown write (a warning, not waited for); one written before still fails")
    func shutdownWrite() async throws {
        try await RedisServerFixture.with { redis in
            let connection = try Keyspace.connect(redis)
            guard case .array(let time) = try connection.command(["TIME"]), let now = time.first?.string.flatMap(Double.init) else {
                throw FixtureError("TIME gave no seconds")
            }
            let late = Keyspace.meta("counter", pid: 900, 7), early = Keyspace.meta("counter", pid: 901, 8)
            try Keyspace.run(Keyspace.healthy(ttl: 1) + [
                ["HSET", late, "original_key", "x", "created_at", String(now + 0.5)],
                ["HSET", early, "original_key", "y", "created_at", String(now - 60)],
            ], on: connection)
            let options = RedisAuditOptions(ttlSeconds: 1, pollInterval: .milliseconds(100), shutdownSince: now)
            let timeline = try await RedisAuditor(connection: connection, options: options).observeExpiry(deadline: .now + .seconds(4))
            let findings = timeline.findings(prefix: "gunicorn", writersStopped: true)
            let shutdown = try #require(findings.first("redis.expiry.shutdown-write"))
            #expect(shutdown.status == .warn)
            #expect(shutdown.observed == "1 key without a TTL written while the app shut down, not waited for: \(late)")
            let stuck = try #require(findings.first("redis.expiry.all-expired"))
            #expect(stuck.status == .fail)
            #expect(stuck.observed?.hasPrefix("1 key alive at the deadline") == true, "\(stuck)")
            #expect(stuck.observed?.hasSuffix(": \(early) (no TTL)") == true, "\(stuck)")
        }
    }
}
