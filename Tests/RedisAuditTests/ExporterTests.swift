import Findings
import Foundation
import KVerifyTestSupport
import RESP
import RedisAudit
import Testing

/// The real Gunicorn Prometheus Exporter writing to a real redis-server, audited through the library.
/// Serialized: each test runs gunicorn with two workers, and the expiry test measures seconds.
@Suite("Redis audit of the real exporter", .serialized)
struct ExporterAuditTests {
    @Test("after traffic, the exporter's keys pass the audit: TTL set, every type present, pairs complete")
    func auditPasses() async throws {
        try await GunicornExporterFixture.withRedis(ttlSeconds: 30) { exporter, redis in
            try await exporter.sendTraffic(20)
            let connection = try Keyspace.connect(redis)
            let result = try await RedisAuditor(connection: connection, options: RedisAuditOptions(ttlSeconds: 30)).audit()
            #expect(result.findings.failures == [], "\(result.findings.failures)")
            #expect(result.findings.filter { $0.status == .warn } == [])
            let summary = result.summary
            #expect(summary.keysWithoutTTL == 0)
            #expect(summary.keysByType["counter"].map { $0.metric > 0 && $0.metric == $0.meta } == true)
            #expect(summary.keysByType["histogram"].map { $0.metric > 0 && $0.metric == $0.meta } == true)
            #expect(summary.keysByType["gauge_all"].map { $0.metric > 0 && $0.metric == $0.meta } == true)
            #expect(summary.processes >= 1)
            #expect((summary.maxTTLMilliseconds ?? .max) <= 30_000)
            #expect(summary.sampledHashes > 0)
        }
    }

    @Test("with REDIS_TTL_DISABLED=true the audit fails: N keys have no TTL")
    func ttlDisabled() async throws {
        try await GunicornExporterFixture.withRedis(ttlDisabled: true) { exporter, redis in
            try await exporter.sendTraffic(10)
            let connection = try Keyspace.connect(redis)
            let result = try await RedisAuditor(connection: connection).audit()
            let missing = try #require(result.findings.first("redis.ttl.missing"))
            #expect(missing.status == .fail)
            #expect(result.summary.keysWithoutTTL == result.summary.layoutKeys)
            #expect(missing.observed?.hasPrefix("\(result.summary.layoutKeys) keys have no TTL") == true, "\(missing.observed ?? "")")
        }
    }

    @Test("TTLs are refreshed while traffic flows, and every key expires within TTL + slack once it stops")
    func lifecycle() async throws {
        try await GunicornExporterFixture.withRedis(ttlSeconds: 5) { exporter, redis in
            try await exporter.sendTraffic(20)
            let connection = try Keyspace.connect(redis)
            // Slack 3 s instead of the default 1 s: the test shares 2 cores with gunicorn and other suites.
            let options = RedisAuditOptions(ttlSeconds: 5, expirySlack: .seconds(3))
            let auditor = RedisAuditor(connection: connection, options: options)
            #expect(try await auditor.audit().findings.failures == [])
            var samples = 0
            var trafficError: (any Error)?
            auditor.onSample = { _ in
                samples += 1
                guard samples <= 4 else { return }
                do { try exporter.sendTrafficBlocking(3) } catch { trafficError = error }
            }
            let timeline = try await auditor.observeExpiry(deadline: .now + .seconds(40))
            #expect(trafficError == nil)
            let findings = timeline.findings(prefix: "gunicorn")
            #expect(findings.map(\.checkID) == ["redis.expiry.refreshed", "redis.expiry.all-expired", "redis.expiry.within-ttl"])
            #expect(findings.allSatisfy { $0.status == .pass }, "\(findings)\n\(timeline.rendered())")
            #expect(timeline.keysAtStart > 0)
            #expect(timeline.samples.contains { $0.refreshed })
            #expect(timeline.samples.last?.alive == 0)
        }
    }
}
