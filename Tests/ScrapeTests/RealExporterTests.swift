import Findings
import Foundation
import KVerifyTestSupport
import MetricRules
import PromText
import Scrape
import Testing

/// `kverify metrics` against the real Gunicorn Prometheus Exporter (gunicorn 23 + exporter 0.2.4 in Redis mode,
/// a real redis-server), started and stopped by fixtures.
@Suite("Scraping the real exporter", .serialized)
struct RealExporterTests {
    @Test("after traffic, the gunicorn profile verifies every worker series")
    func verifiesAfterTraffic() async throws {
        try await GunicornExporterFixture.withRedis { exporter, _ in
            try await exporter.sendTraffic(20)
            let outcome = await MetricsScrape(source: .url(exporter.metricsURL), ruleSets: [Profiles.gunicorn]).run()
            let failures = outcome.report.findings.filter { $0.status == .fail }
            #expect(failures.isEmpty, "\(failures)\n\(exporter.log)")
            #expect(outcome.exitStatus == .verified)
            let counted = try #require(outcome.report.findings.first { $0.checkID == "gunicorn.requests.counted" })
            #expect(counted.observed?.hasPrefix("sum 20 over") == true, "\(counted)")
            // Two workers, each with its own worker_id on its request-duration histogram.
            let histogram = try #require(outcome.exposition?.family(named: "gunicorn_worker_request_duration_seconds"))
            let workers = Set(histogram.samples.compactMap { $0.label("worker_id") })
            #expect(!workers.isEmpty && workers.allSatisfy { $0.hasPrefix("worker_") })
            // The exporter's doubled HELP/TYPE blocks are named as the known quirk, a warning only.
            let quirk = outcome.report.findings.first { $0.checkID == "gunicorn.exporter.duplicate-type-blocks" }
            #expect(quirk?.status == .warn)
        }
    }

    @Test("asked for strict OpenMetrics, the exporter's repeated family metadata is rejected with its location")
    func strictOpenMetrics() async throws {
        try await GunicornExporterFixture.withRedis { exporter, _ in
            try await exporter.sendTraffic(5)
            let outcome = await MetricsScrape(source: .url(exporter.metricsURL), format: .openmetrics).run()
            #expect(outcome.exitStatus == .usageOrInput)
            let finding = try #require(outcome.report.findings.first)
            #expect(finding.checkID == "exposition.parsed")
            #expect(finding.subject.hasPrefix(exporter.metricsURL + ":"))
            // Which violation comes first depends on the order the exporter prints its workers: the repeated family
            // metadata, or a histogram's `_sum` lines interleaving the worker groups.
            let observed = finding.observed ?? ""
            #expect(observed.contains("already used by an earlier family") || observed.contains("are not contiguous"), "\(finding)")
        }
    }

    @Test("before any request, the profile fails and says that no worker series exist yet")
    func failsWithoutTraffic() async throws {
        try await GunicornExporterFixture.withRedis { exporter, _ in
            let outcome = await MetricsScrape(source: .url(exporter.metricsURL), ruleSets: [Profiles.gunicorn]).run()
            #expect(outcome.exitStatus == .checkFailed)
            let present = try #require(outcome.report.findings.first { $0.checkID == "gunicorn.requests.present" })
            #expect(present.status == .fail)
            #expect(present.observed == "declared (# TYPE) but no series" || present.observed == "absent", "\(present)")
            #expect(present.detail?.contains("send traffic") == true)
        }
    }

    @Test("an exporter that silently skipped its metrics server is reported unreachable with the likely cause")
    func metricsServerSkipped() async throws {
        try await GunicornExporterFixture.withRedis(mode: .metricsServerSkipped) { exporter, _ in
            try await exporter.sendTraffic(3)
            let outcome = await MetricsScrape(source: .url(exporter.metricsURL), ruleSets: [Profiles.gunicorn],
                                              timeout: .seconds(3)).run()
            #expect(outcome.exitStatus == .unreachable)
            let finding = try #require(outcome.report.findings.first)
            #expect(finding.checkID == "scrape.reachable")
            #expect(finding.status == .fail)
            #expect(finding.detail?.contains("skipping metrics server") == true)
            // The real exporter logged the reason, so the hint names what really happened.
            #expect(exporter.log.contains("skipping metrics server"))
        }
    }
}

@Suite("Scrape failures map to findings and exit codes")
struct ScrapeFailureTests {
    @Test("HTTP error statuses are unreachable (exit 3)", arguments: [404, 500])
    func httpStatus(code: Int) async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let outcome = await MetricsScrape(source: .url(server.url("/status/\(code)"))).run()
        #expect(outcome.exitStatus == .unreachable)
        #expect(outcome.report.findings.map(\.checkID) == ["scrape.http-status"])
        #expect(outcome.report.findings.first?.observed == "HTTP \(code)")
    }

    @Test("connection refused is unreachable and names the URL")
    func refused() async throws {
        let url = "http://127.0.0.1:\(try TCPProbe.freePort())/metrics"
        let outcome = await MetricsScrape(source: .url(url)).run()
        #expect(outcome.exitStatus == .unreachable)
        #expect(outcome.report.findings.first?.subject == url)
    }

    @Test("a server slower than --timeout is unreachable")
    func slow() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let outcome = await MetricsScrape(source: .url(server.url("/slow/5")), timeout: .milliseconds(500)).run()
        #expect(outcome.exitStatus == .unreachable)
        #expect(outcome.report.findings.first?.expected == "an answer within --timeout")
    }

    @Test("a body over --max-bytes is refused as input (exit 2) without reading it all")
    func tooLarge() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let outcome = await MetricsScrape(source: .url(server.url("/big/10000000")), maxBytes: 200_000).run()
        #expect(outcome.exitStatus == .usageOrInput)
        #expect(outcome.report.findings.first?.checkID == "input.size")
    }

    @Test("an unknown Content-Type is refused with a hint, unless --format forces a parser")
    func contentType() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        let auto = await MetricsScrape(source: .url(server.url("/content-type/text/html"))).run()
        #expect(auto.exitStatus == .usageOrInput)
        #expect(auto.report.findings.first?.observed == "Content-Type text/html")
        let forced = await MetricsScrape(source: .url(server.url("/content-type/text/html")), format: .text).run()
        #expect(forced.exitStatus == .verified)
        #expect(forced.exposition?.sampleCount == 1)
    }

    @Test("Content-Type picks OpenMetrics or text")
    func detection() async throws {
        let server = try await HTTPTestServer()
        defer { server.stop() }
        // The default 10 s --timeout is not what this test is about: the first minute of the full suite loads the
        // machine enough that a scrape of this python server once took longer (CI, stop 22).
        let openMetrics = await MetricsScrape(source: .url(server.url("/openmetrics")), timeout: .seconds(60)).run()
        #expect(openMetrics.exposition?.format == .openMetrics, "\(openMetrics.report.findings)")
        let text = await MetricsScrape(source: .url(server.url("/text")), timeout: .seconds(60)).run()
        #expect(text.exposition?.format == .text, "\(text.report.findings)")
    }
}

@Suite("Reading expositions from files")
struct FileInputTests {
    private func write(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-\(UUID().uuidString).prom").path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    @Test("auto format sniffs # EOF for OpenMetrics")
    func sniffing() async throws {
        let path = try write(Array("# TYPE a counter\na_total 1\n# EOF\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcome = await MetricsScrape(source: .file(path)).run()
        #expect(outcome.exposition?.format == .openMetrics)
        #expect(outcome.exitStatus == .verified)
    }

    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        var location: String
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        .init(name: "truncated label set", bytes: Array("up 1\nhttp_requests_total{code=\"200\"\n".utf8), location: ":2:"),
        .init(name: "NUL byte", bytes: Array("up 1\nup\u{0}x 1\n".utf8), location: ":2:"),
        .init(name: "invalid UTF-8", bytes: Array("up 1\nx{a=\"".utf8) + [0xff, 0xfe] + Array("\"} 1\n".utf8), location: ":2:"),
        .init(name: "binary garbage", bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00], location: ":1:"),
        .init(name: "not a number", bytes: Array("up one\n".utf8), location: ":1:"),
    ]

    @Test("bad input fails with file:line:column and exit 2", arguments: badInputs)
    func badInput(_ input: BadInput) async throws {
        let path = try write(input.bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcome = await MetricsScrape(source: .file(path)).run()
        #expect(outcome.exitStatus == .usageOrInput)
        let finding = try #require(outcome.report.findings.first)
        #expect(finding.checkID == "exposition.parsed")
        #expect(finding.subject.hasPrefix(path + input.location), "\(finding.subject)")
        #expect(!(finding.observed ?? "").isEmpty)
    }

    @Test("a missing file is an input error naming the path")
    func missing() async {
        let outcome = await MetricsScrape(source: .file("/nonexistent/metrics.prom")).run()
        #expect(outcome.exitStatus == .usageOrInput)
        #expect(outcome.report.findings.first?.subject == "/nonexistent/metrics.prom")
    }
}
