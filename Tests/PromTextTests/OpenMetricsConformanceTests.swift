import Foundation
import KVerifyTestSupport
import PromText
import Testing

/// Outside the suite: its `@Suite` trait reads it, and a suite's attribute cannot refer to the suite itself.
private let openMetricsCorpus = RepositoryPaths.shared.appendingPathComponent("corpus/openmetrics")

/// Every case of the OpenMetrics conformance corpus (prometheus/OpenMetrics tests/testdata/parsers), parsed in
/// OpenMetrics mode: the verdict must match `test.json`'s `shouldParse`.
///
/// The corpus lives in `../shared` beside the checkout, which a plain clone does not have: the suite is then
/// skipped with that reason shown. A directory that exists but is empty or unreadable still fails
/// `corpusIsComplete`.
@Suite("OpenMetrics conformance corpus",
       .enabled(if: FileManager.default.fileExists(atPath: openMetricsCorpus.path),
                "no OpenMetrics corpus at ../shared/corpus/openmetrics beside the checkout (a plain clone has none): skipped"))
struct OpenMetricsConformanceTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var shouldParse: Bool
        var bytes: [UInt8]
        var testDescription: String { "\(name) (\(shouldParse ? "parses" : "rejected"))" }
    }

    static let corpus = openMetricsCorpus

    /// All cases, sorted by name; an unreadable case becomes a case that fails with its problem as the name.
    static let cases: [Case] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []
        return names.sorted().compactMap { name -> Case? in
            let directory = corpus.appendingPathComponent(name)
            guard let json = try? Data(contentsOf: directory.appendingPathComponent("test.json")) else { return nil }
            guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
                  let shouldParse = object["shouldParse"] as? Bool,
                  let metrics = try? Data(contentsOf: directory.appendingPathComponent("metrics"))
            else { return Case(name: "\(name): unreadable test.json or metrics", shouldParse: true, bytes: [0xFF]) }
            return Case(name: name, shouldParse: shouldParse, bytes: Array(metrics))
        }
    }()

    @Test("the corpus is complete: 211 cases, 44 parse and 167 are rejected")
    func corpusIsComplete() {
        #expect(Self.cases.count == 211, "corpus at \(Self.corpus.path)")
        #expect(Self.cases.filter(\.shouldParse).count == 44)
        #expect(Self.cases.filter { !$0.shouldParse }.count == 167)
    }

    @Test("every verdict is right", arguments: cases)
    func verdict(_ testCase: Case) {
        let outcome: String
        do {
            let exposition = try ExpositionParser.parse(testCase.bytes, format: .openMetrics)
            outcome = "parsed \(exposition.families.count) families"
            #expect(testCase.shouldParse, "\(testCase.name) should be rejected but \(outcome)")
        } catch {
            #expect(!testCase.shouldParse, "\(testCase.name) should parse but failed: \(error)")
        }
    }

    @Test("the same verdicts when the input arrives in 1…7-byte chunks", arguments: 1...7)
    func chunkedVerdicts(chunkSize: Int) {
        var wrong: [String] = []
        for testCase in Self.cases {
            var parser = ExpositionParser(format: .openMetrics)
            var parsed = true
            do {
                var offset = 0
                while offset < testCase.bytes.count {
                    let end = min(offset + chunkSize, testCase.bytes.count)
                    try parser.consume(Array(testCase.bytes[offset..<end]))
                    offset = end
                }
                _ = try parser.finish()
            } catch {
                parsed = false
            }
            if parsed != testCase.shouldParse { wrong.append(testCase.name) }
        }
        #expect(wrong.isEmpty, "wrong verdicts with \(chunkSize)-byte chunks: \(wrong.joined(separator: ", "))")
    }
}
