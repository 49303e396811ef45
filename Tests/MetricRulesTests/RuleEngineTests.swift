import Findings
import MetricRules
import PromText
import Testing

/// Builds expositions directly from the model, so these tests pin the rules independent of the parser.
private func family(_ name: String, _ type: MetricType, _ samples: [(String, [String: String], Double)]) -> MetricFamily {
    MetricFamily(
        name: name, type: type,
        samples: samples.enumerated().map { index, sample in
            Sample(name: sample.0, labels: sample.1.sorted { $0.key < $1.key }.map { Label(name: $0.key, value: $0.value) },
                   value: sample.2, line: index + 1)
        }, line: 1)
}

private func histogram(_ name: String, labels: [String: String], buckets: [(String, Double)], count: Double?, sum: Double?) -> [(String, [String: String], Double)] {
    var samples = buckets.map { (name + "_bucket", labels.merging(["le": $0.0]) { $1 }, $0.1) }
    if let count { samples.append((name + "_count", labels, count)) }
    if let sum { samples.append((name + "_sum", labels, sum)) }
    return samples
}

private func statuses(_ findings: [Finding], _ id: String) -> [Finding.Status] {
    findings.filter { $0.checkID == id }.map(\.status)
}

@Suite("Generic consistency rules")
struct GenericRuleTests {
    struct HistogramCase: CustomTestStringConvertible, Sendable {
        var name: String
        var buckets: [(String, Double)]
        var count: Double?
        var sum: Double?
        var passes: Bool
        var observedContains: String
        var testDescription: String { name }
    }

    static let histogramCases: [HistogramCase] = [
        .init(name: "consistent", buckets: [("0.1", 1), ("1", 3), ("+Inf", 4)], count: 4, sum: 2.5, passes: true, observedContains: "1 series"),
        .init(name: "decreasing bucket", buckets: [("0.1", 3), ("1", 2), ("+Inf", 4)], count: 4, sum: 1, passes: false,
              observedContains: "le=\"1\" 2 < le=\"0.1\" 3"),
        .init(name: "no +Inf bucket", buckets: [("0.1", 1), ("1", 3)], count: 3, sum: 1, passes: false, observedContains: "highest le=\"1\""),
        .init(name: "+Inf differs from _count", buckets: [("1", 3), ("+Inf", 4)], count: 5, sum: 1, passes: false,
              observedContains: "_count 5, +Inf bucket 4"),
        .init(name: "infinite sum", buckets: [("+Inf", 4)], count: 4, sum: .infinity, passes: false, observedContains: "_sum +Inf"),
        .init(name: "NaN sum", buckets: [("+Inf", 4)], count: 4, sum: .nan, passes: false, observedContains: "_sum NaN"),
        .init(name: "negative bucket", buckets: [("1", -1), ("+Inf", 0)], count: 0, sum: 0, passes: false, observedContains: "has -1"),
    ]

    @Test("histogram consistency", arguments: histogramCases)
    func histogramConsistency(_ testCase: HistogramCase) {
        let exposition = Exposition(format: .text, families: [
            family("latency_seconds", .histogram, histogram("latency_seconds", labels: ["worker": "a"], buckets: testCase.buckets,
                                                            count: testCase.count, sum: testCase.sum)),
        ], oddities: [])
        let findings = RuleEngine().evaluate(exposition).filter { $0.checkID == "exposition.histogram-consistent" }
        #expect(findings.allSatisfy { $0.status == (testCase.passes ? .pass : .fail) })
        #expect(findings.contains { ($0.observed ?? "").contains(testCase.observedContains) }, "\(findings)")
        if !testCase.passes { #expect(findings.first?.subject == "latency_seconds{worker=\"a\"}") }
    }

    @Test("series of one histogram are judged separately, by their labels without le")
    func perSeries() {
        let good = histogram("h", labels: ["worker": "good"], buckets: [("1", 1), ("+Inf", 2)], count: 2, sum: 1)
        let bad = histogram("h", labels: ["worker": "bad"], buckets: [("1", 1), ("+Inf", 2)], count: 3, sum: 1)
        let findings = RuleEngine().evaluate(Exposition(format: .text, families: [family("h", .histogram, good + bad)], oddities: []))
        let failures = findings.filter { $0.status == .fail }
        #expect(failures.map(\.subject) == ["h{worker=\"bad\"}"])
    }

    @Test("series with different bucket bounds are each judged by their own bounds")
    func differentBounds() {
        // The check reuses the previous series' parsed bound at the same bucket index when the text matches; a
        // series with other bounds at the same indexes must not inherit them.
        let first = histogram("h", labels: ["worker": "a"], buckets: [("0.1", 1), ("1", 2), ("+Inf", 3)], count: 3, sum: 1)
        let shifted = histogram("h", labels: ["worker": "b"], buckets: [("1", 2), ("0.1", 1), ("+Inf", 3)], count: 3, sum: 1)
        let noInf = histogram("h", labels: ["worker": "c"], buckets: [("0.1", 1), ("1", 2), ("5", 3)], count: 3, sum: 1)
        let findings = RuleEngine().evaluate(Exposition(format: .text, families: [family("h", .histogram, first + shifted + noInf)], oddities: []))
        let failures = findings.filter { $0.status == .fail }
        #expect(failures.map(\.subject) == ["h{worker=\"c\"}"])
        #expect(failures.first?.observed == "highest le=\"5\"")
    }

    @Test("precomposed and decomposed é are one series (Swift's ==), whether their lines are adjacent or not")
    func seriesByBytes() {
        let precomposed = histogram("h", labels: ["w": "\u{E9}"], buckets: [("+Inf", 2)], count: 2, sum: 1)
        let decomposed = histogram("h", labels: ["w": "e\u{301}"], buckets: [("+Inf", 5)], count: 5, sum: 1)
        let other = histogram("h", labels: ["w": "x"], buckets: [("+Inf", 1)], count: 1, sum: 1)
        for samples in [precomposed + decomposed + other, precomposed + other + decomposed] {
            let findings = RuleEngine().evaluate(Exposition(format: .text, families: [family("h", .histogram, samples)], oddities: []))
            let histogram = findings.filter { $0.checkID == "exposition.histogram-consistent" }
            #expect(histogram.map(\.observed) == ["2 series consistent"])
        }
    }

    @Test("negative and NaN counters fail, _created is ignored")
    func counters() {
        let exposition = Exposition(format: .text, families: [
            family("requests_total", .counter, [("requests_total", ["w": "1"], 3), ("requests_total", ["w": "2"], -1),
                                                ("requests_total", ["w": "3"], .nan), ("requests_created", [:], -5)]),
        ], oddities: [])
        let failures = RuleEngine().evaluate(exposition).filter { $0.status == .fail }
        #expect(failures.map(\.subject) == ["requests_total{w=\"2\"}", "requests_total{w=\"3\"}"])
        #expect(failures.allSatisfy { $0.checkID == "exposition.counter-non-negative" })
    }

    @Test("oddities become one warning per kind, named by a profile that knows them")
    func oddities() {
        let oddities = [
            ParseOddity(kind: .duplicateMetadata, family: "a", line: 10, message: "second # TYPE for a"),
            ParseOddity(kind: .duplicateMetadata, family: "b", line: 12, message: "second # TYPE for b"),
            ParseOddity(kind: .duplicateSeries, family: "a", line: 20, message: "a{x=\"1\"} repeated"),
        ]
        let exposition = Exposition(format: .text, families: [], oddities: oddities)
        let generic = RuleEngine().evaluate(exposition)
        #expect(generic.filter { $0.status == .warn }.map(\.checkID).sorted() == ["exposition.duplicate-metadata", "exposition.duplicate-series"])
        let duplicate = try! #require(generic.first { $0.checkID == "exposition.duplicate-metadata" })
        #expect(duplicate.subject == "a, b")
        #expect(duplicate.observed?.contains("2 occurrence(s) in 2 families; first at line 10") == true)

        let named = RuleEngine().evaluate(exposition, ruleSets: [Profiles.gunicorn])
        #expect(named.contains { $0.checkID == "gunicorn.exporter.duplicate-type-blocks" && $0.status == .warn })
        #expect(!named.contains { $0.checkID == "exposition.duplicate-metadata" })
    }

    @Test("failures are capped per rule, with the rest counted")
    func capping() {
        let samples = (0..<25).map { ("c_total", ["i": "\($0)"], -1.0) }
        let findings = RuleEngine(maxFailuresPerRule: 10).evaluate(
            Exposition(format: .text, families: [family("c_total", .counter, samples)], oddities: []))
        let failures = findings.filter { $0.status == .fail }
        #expect(failures.count == 11)
        #expect(failures.last?.observed == "15 more problems (25 in all)")
    }
}

@Suite("Declarative rules")
struct DeclarativeRuleTests {
    static let exposition = Exposition(format: .text, families: [
        family("jobs_total", .counter, [("jobs_total", ["worker": "w1", "queue": "a"], 2), ("jobs_total", ["worker": "w2", "queue": "b"], 0)]),
        family("temperature", .gauge, [("temperature", ["room": "x"], 21.5), ("temperature", ["room": "y"], .infinity)]),
        family("declared_only", .gauge, []),
    ], oddities: [])

    struct Case: CustomTestStringConvertible, Sendable {
        var rule: MetricRule
        var expected: [Finding.Status]
        var observed: String?
        var testDescription: String { rule.id }
    }

    static let cases: [Case] = [
        .init(rule: .init(id: "present", metric: "jobs_total", check: .present), expected: [.pass], observed: "2 series"),
        .init(rule: .init(id: "absent", metric: "nope", check: .present), expected: [.fail], observed: "absent"),
        .init(rule: .init(id: "declared-only", metric: "declared_only", check: .present), expected: [.fail],
              observed: "declared (# TYPE) but no series"),
        .init(rule: .init(id: "type-ok", metric: "jobs_total", check: .type([.counter])), expected: [.pass], observed: "type counter"),
        .init(rule: .init(id: "type-bad", metric: "temperature", check: .type([.counter])), expected: [.fail], observed: "type gauge"),
        .init(rule: .init(id: "sum>0", metric: "jobs_total", check: .value(.compare(.greater, 0), aggregate: .sum)), expected: [.pass],
              observed: "sum 2 over 2 series"),
        .init(rule: .init(id: "each>0", metric: "jobs_total", check: .value(.compare(.greater, 0), aggregate: .each)), expected: [.fail],
              observed: "value 0"),
        .init(rule: .init(id: "each>0-filtered", metric: "jobs_total", check: .value(.compare(.greater, 0), aggregate: .each),
                          labelFilter: [Label(name: "queue", value: "a")]), expected: [.pass], observed: "1 series, 2…2"),
        .init(rule: .init(id: "finite", metric: "temperature", check: .value(.finite, aggregate: .each)), expected: [.fail],
              observed: "value +Inf"),
        .init(rule: .init(id: "between-warn", metric: "temperature", check: .value(.between(15, 30), aggregate: .each), severity: .warn),
              expected: [.warn], observed: "value +Inf"),
        .init(rule: .init(id: "label", metric: "jobs_total", check: .label("worker", matches: try! .init("w[0-9]+"))), expected: [.pass],
              observed: "2 series"),
        .init(rule: .init(id: "label-pattern", metric: "jobs_total", check: .label("queue", matches: try! .init("a"))), expected: [.fail],
              observed: "queue=\"b\""),
        .init(rule: .init(id: "label-missing", metric: "temperature", check: .label("worker", matches: nil)), expected: [.fail, .fail],
              observed: "no worker label"),
        .init(rule: .init(id: "series>=3", metric: "jobs_total", check: .seriesCount(atLeast: 3)), expected: [.fail], observed: "2 series"),
        .init(rule: .init(id: "optional", metric: "nope", check: .present, onlyIfPresent: true), expected: [.pass],
              observed: "absent (checked only when present)"),
        .init(rule: .init(id: "om-counter-name", metric: "jobs_total_total", check: .present), expected: [.fail], observed: "absent"),
    ]

    @Test("each check kind", arguments: cases)
    func check(_ testCase: Case) {
        let findings = RuleEngine().evaluate(Self.exposition, ruleSets: [RuleSet(name: "t", rules: [testCase.rule])])
        let mine = findings.filter { $0.checkID == testCase.rule.id }
        #expect(mine.map(\.status) == testCase.expected)
        if let observed = testCase.observed { #expect(mine.first?.observed == observed) }
    }

    @Test("x_total finds an OpenMetrics counter family named x")
    func openMetricsCounterName() {
        let exposition = Exposition(format: .openMetrics, families: [family("jobs", .counter, [("jobs_total", [:], 4), ("jobs_created", [:], 1)])], oddities: [])
        let rule = MetricRule(id: "sum", metric: "jobs_total", check: .value(.compare(.equal, 4), aggregate: .sum))
        let findings = RuleEngine().evaluate(exposition, ruleSets: [RuleSet(name: "t", rules: [rule])])
        #expect(findings.first { $0.checkID == "sum" }?.status == .pass)
    }

    @Test("value predicates parse from their text form", arguments: [
        ("> 0", 1.0, true), ("> 0", 0.0, false), (">= 1", 1.0, true), ("< 5", 5.0, false), ("<= 5", 5.0, true),
        ("== 1", 1.0, true), ("!= 0", 0.0, false), ("between 0 100", 100.0, true), ("between 0 100", 101.0, false),
        ("finite", Double.infinity, false), ("finite", Double.nan, false), ("> 0", Double.nan, false),
    ])
    func predicates(text: String, value: Double, holds: Bool) throws {
        let predicate = try #require(ValuePredicate(parsing: text))
        #expect(predicate.holds(for: value) == holds)
    }

    @Test("malformed predicates are rejected, a NaN bound among them (it could never hold)", arguments: [">0", "> x", "between 5 1", "around 3", "", "> NaN", "<= nan", "between NaN 1"])
    func badPredicates(text: String) {
        #expect(ValuePredicate(parsing: text) == nil)
    }
}
