import Foundation
import Processes
import KVerifyTestSupport
import PromText
import Testing

/// The Gunicorn Prometheus Exporter's real output in Redis mode: a first block of HELP+TYPE for every family
/// without samples, then HELP+TYPE again with the samples; histogram `_sum` before `_bucket`.
@Suite("Gunicorn exporter expositions")
struct ExporterExpositionTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/exporter-redis-0.2.4.txt")

    @Test("the captured exposition parses into one family per name with every sample")
    func capturedExposition() throws {
        let bytes = Array(try Data(contentsOf: Self.fixture))
        #expect(FormatDetection.sniff(bytes) == .text)
        let exposition = try ExpositionParser.parse(bytes, format: .text)

        #expect(exposition.families.count == 14)
        #expect(Set(exposition.families.map(\.name)).count == exposition.families.count)
        #expect(exposition.sampleCount == 34)

        let duration = try #require(exposition.family(named: "gunicorn_worker_request_duration_seconds"))
        #expect(duration.type == .histogram)
        #expect(duration.help == "Request duration in seconds")
        #expect(duration.line == 3)
        #expect(duration.samples.count == 22)
        #expect(duration.samples.first?.name == "gunicorn_worker_request_duration_seconds_sum")
        #expect(duration.samples.filter { $0.name.hasSuffix("_bucket") }.count == 18)
        let infinity = duration.samples.filter { $0.label("le") == "+Inf" }
        let counts = duration.samples.filter { $0.name.hasSuffix("_count") }
        #expect(infinity.map(\.value).sorted() == counts.map(\.value).sorted())

        let requests = try #require(exposition.family(named: "gunicorn_worker_requests_total"))
        #expect(requests.type == .counter)
        #expect(requests.samples.map(\.value).reduce(0, +) == 21)  // the capture followed 21 requests
        #expect(requests.samples.allSatisfy { $0.label("worker_id")?.hasPrefix("worker_") == true })
        #expect(try #require(exposition.family(named: "gunicorn_worker_memory_bytes")).samples.allSatisfy {
            $0.label("pid") != nil
        })

        // Six families repeat HELP and TYPE: twelve duplicate-metadata oddities, nothing else.
        #expect(exposition.oddities.count == 12)
        #expect(exposition.oddities.allSatisfy { $0.kind == .duplicateMetadata })
        #expect(Set(exposition.oddities.map(\.family)).count == 6)
        #expect(exposition.oddities.first?.line == 29)
    }

    @Test("the live exporter's /metrics parses, with the traffic it was sent",
          .timeLimit(.minutes(2)))
    func liveExporter() async throws {
        try await GunicornExporterFixture.withRedis { exporter, _ in
            try await exporter.sendTraffic(20)
            let (contentType, body) = try await Self.fetch(exporter.metricsURL)
            let format = try #require(FormatDetection.format(forContentType: contentType), "Content-Type \(contentType)")
            #expect(format == .text)
            let exposition = try ExpositionParser.parse(body, format: format)

            let requests = try #require(exposition.family(named: "gunicorn_worker_requests_total"), "\(exporter.log)")
            #expect(requests.type == .counter)
            #expect(requests.samples.map(\.value).reduce(0, +) == 20)
            let duration = try #require(exposition.family(named: "gunicorn_worker_request_duration_seconds"))
            #expect(duration.type == .histogram)
            #expect(duration.samples.filter { $0.label("le") == "+Inf" }.map(\.value).reduce(0, +) == 20)
            #expect(Set(exposition.families.map(\.name)).count == exposition.families.count)
            #expect(exposition.oddities.contains { $0.kind == .duplicateMetadata })
            #expect(!exposition.oddities.contains { $0.kind == .duplicateSeries })
        }
    }

    @Test("scripts/bench/gen_exposition.py writes exactly the samples it is asked for", .timeLimit(.minutes(1)),
          arguments: [false, true])
    func generator(exporterQuirks: Bool) async throws {
        let script = RepositoryPaths.root.appendingPathComponent("scripts/bench/gen_exposition.py").path
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: output) }
        try await Self.run("/usr/bin/env", ["python3", script, "--samples", "5003", output.path] + (exporterQuirks ? ["--exporter-quirks"] : []))

        let exposition = try ExpositionParser.parse(Array(try Data(contentsOf: output)), format: .text)
        #expect(exposition.sampleCount == 5003)
        #expect(exposition.families.count == 9)
        #expect(!exposition.oddities.contains { $0.kind != .duplicateMetadata })
        #expect(exposition.oddities.count == (exporterQuirks ? 18 : 0))
        let duration = try #require(exposition.family(named: "gunicorn_worker_request_duration_seconds"))
        #expect(duration.samples.first?.name.hasSuffix("_sum") == true)
        #expect(duration.samples.allSatisfy { $0.label("worker_id") != nil && $0.label("pid") != nil })
    }

    // MARK: Helpers

    /// GET with curl (a real client, independent of the code under test), bounded by --max-time.
    static func fetch(_ url: String) async throws -> (contentType: String, body: [UInt8]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let headers = directory.appendingPathComponent("headers"), body = directory.appendingPathComponent("body")
        try await run("/usr/bin/env", ["curl", "-sS", "--max-time", "15", "-D", headers.path, "-o", body.path, url])
        let headerText = try String(contentsOf: headers, encoding: .utf8)
        let contentType = headerText.split(whereSeparator: \.isNewline)
            .first { $0.lowercased().hasPrefix("content-type:") }
            .map { String($0.dropFirst("content-type:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
        return (contentType, Array(try Data(contentsOf: body)))
    }

    /// Waits off the cooperative pool (`ProcessRunner`), which other tests' in-process sims need.
    static func run(_ executable: String, _ arguments: [String]) async throws {
        let result = try await ProcessRunner.run(executable, arguments: arguments, environment: ProcessInfo.processInfo.environment,
                                                 timeout: .seconds(60))
        guard result.succeeded else {
            throw FixtureError("\(arguments.prefix(2).joined(separator: " ")) exited \(result.status): \(result.stderrExcerpt())")
        }
    }
}
