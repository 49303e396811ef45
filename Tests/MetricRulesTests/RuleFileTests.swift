import Findings
import MetricRules
import PromText
import Testing

@Suite("YAML rules files")
struct RuleFileTests {
    @Test("every check kind loads with its options")
    func loadsAll() throws {
        let set = try RuleFile.parse("""
            rules:
              - id: a
                metric: m_total
                present: true
              - id: b
                metric: m_total
                type: [counter, untyped]
              - id: c
                metric: m_total
                value: "> 0"
                aggregate: sum
                severity: warn
                hint: send traffic
              - id: d
                metric: m
                label: worker_id
                matches: "worker_[0-9]+"
                labels: {queue: a}
              - id: e
                metric: m
                min_series: 3
              - id: f
                metric: h
                histogram: consistent
                only_if_present: true
              - id: g
                metric: h
                value: finite
                sample: _sum
            """, name: "rules.yaml")
        #expect(set.rules.map(\.id) == ["a", "b", "c", "d", "e", "f", "g"])
        let c = set.rules[2]
        #expect(c.severity == .warn)
        #expect(c.hint == "send traffic")
        guard case .value(let predicate, .sum) = c.check else { Issue.record("rule c is \(c.check)"); return }
        #expect(predicate.description == "> 0")
        #expect(set.rules[3].labelFilter == [Label(name: "queue", value: "a")])
        #expect(set.rules[5].onlyIfPresent)
        #expect(set.rules[6].sampleSuffix == "_sum")
    }

    struct BadCase: CustomTestStringConvertible, Sendable {
        var yaml: String
        var message: String
        var testDescription: String { message }
    }

    static let badCases: [BadCase] = [
        .init(yaml: "rules: [\n", message: "rules.yaml:2:1: invalid YAML"),
        .init(yaml: "checks: []\n", message: "rules.yaml:1:1: expected a mapping with a 'rules' list"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n    valu: \"> 0\"\n", message: "rules.yaml:4:5: rule 1: unknown key 'valu'"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n", message: "rule 'a': needs exactly one of"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n    present: true\n    type: gauge\n", message: "found 2"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n    value: \"bigger than 3\"\n", message: "rules.yaml:4:12: rule 'a': 'value' must look like"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n    type: countr\n", message: "'type' must be one of"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n    label: x\n    matches: \"(\"\n", message: "not a valid regular expression"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n    present: true\n  - id: a\n    metric: n\n    present: true\n",
              message: "rule id 'a' is used twice"),
        .init(yaml: "rules:\n  - metric: m\n    present: true\n", message: "rule 1: 'id' is required"),
        .init(yaml: "rules:\n  - id: a\n    metric: m\n    present: true\n    severity: pass\n", message: "'severity' must be fail or warn"),
    ]

    @Test("bad files fail with a message located in the file", arguments: badCases)
    func rejects(_ testCase: BadCase) {
        do {
            _ = try RuleFile.parse(testCase.yaml, name: "rules.yaml")
            Issue.record("accepted: \(testCase.yaml)")
        } catch let error as RuleFileError {
            #expect(error.description.hasPrefix("rules file rules.yaml"), "\(error)")
            #expect(error.description.contains(testCase.message), "\(error)")
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }
}
