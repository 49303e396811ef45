import Findings
import Foundation
import PromText
import YAMLInput
import Yams

/// Loads rules from a YAML file:
///
/// ```yaml
/// rules:
///   - id: app.requests.counted       # required, unique
///     metric: http_requests_total    # required
///     value: "> 0"                   # exactly one check: present | type | value | label | min_series | histogram
///     aggregate: sum                 # value only: each (default) | sum
///     sample: _count                 # histograms/summaries: which samples a value rule reads
///     labels: {method: GET}          # only series with these label values
///     severity: warn                 # fail (default) | warn
///     hint: "send traffic first"     # shown with a failure
///     only_if_present: true          # an absent family passes
/// ```
/// Checks: `present: true`, `type: counter` (or a list), `value: "> 0" | ">= 1" | "== 1" | "!= 0" | "< 5" |
/// "<= 5" | "between 0 100" | finite`, `label: NAME` with optional `matches: REGEX`, `min_series: N`,
/// `histogram: consistent`. Errors name the file, line and column.
public enum RuleFile {
    static let checkKeys: Set<String> = ["present", "type", "value", "label", "min_series", "histogram"]
    static let knownKeys: Set<String> = checkKeys.union(["id", "metric", "aggregate", "sample", "labels", "severity", "hint",
                                                         "matches", "only_if_present"])

    public static func load(path: String) throws -> RuleSet {
        let bytes: [UInt8]
        do {
            bytes = try InputFile.read(path)
        } catch {
            throw RuleFileError(file: path, message: "the file \(error.reason)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw RuleFileError(file: path, message: "cannot read it as UTF-8 text")
        }
        return try parse(text, name: path)
    }

    public static func parse(_ text: String, name: String) throws -> RuleSet {
        do {
            try YAMLBudget.check(text)
        } catch {
            throw KVerifyError(.usageOrInput, "rules file \(name) is refused: \(error)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw RuleFileError(file: name, yaml: error)
        }
        guard let root, let rulesNode = root.mapping?["rules"] else {
            throw located(name, root, "expected a mapping with a 'rules' list at the top")
        }
        guard let sequence = rulesNode.sequence else {
            throw located(name, rulesNode, "'rules' must be a list of rules")
        }
        var rules: [MetricRule] = []
        var seen: Set<String> = []
        for (index, node) in sequence.enumerated() {
            let rule = try parseRule(node, index: index, file: name)
            guard seen.insert(rule.id).inserted else { throw located(name, node, "rule id '\(rule.id)' is used twice") }
            rules.append(rule)
        }
        return RuleSet(name: name, rules: rules)
    }

    private static func parseRule(_ node: Node, index: Int, file: String) throws -> MetricRule {
        guard let mapping = node.mapping else { throw located(file, node, "rule \(index + 1) must be a mapping") }
        var fields: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string, knownKeys.contains(name) else {
                let keys = knownKeys.sorted().joined(separator: ", ")
                throw located(file, key, "rule \(index + 1): unknown key '\(key.string ?? "?")' (known keys: \(keys))")
            }
            fields[name] = value
        }
        func string(_ key: String) throws -> String? {
            guard let node = fields[key] else { return nil }
            guard let value = node.string, node.scalar != nil else {
                throw located(file, node, "rule \(index + 1): '\(key)' must be a string")
            }
            return value
        }
        guard let id = try string("id"), !id.isEmpty else { throw located(file, node, "rule \(index + 1): 'id' is required") }
        let label = "rule '\(id)'"
        guard let metric = try string("metric"), !metric.isEmpty else { throw located(file, node, "\(label): 'metric' is required") }
        let checks = fields.keys.filter(checkKeys.contains)
        guard checks.count == 1, let checkKey = checks.first else {
            throw located(file, node, "\(label): needs exactly one of \(checkKeys.sorted().joined(separator: ", ")), found \(checks.count)")
        }
        let checkNode = fields[checkKey]!
        let check: MetricRule.Check
        switch checkKey {
        case "present":
            guard checkNode.bool == true else { throw located(file, checkNode, "\(label): 'present' takes true") }
            check = .present
        case "type":
            let names = checkNode.sequence.map { $0.compactMap(\.string) } ?? [checkNode.string].compactMap { $0 }
            let types = names.compactMap { MetricType(rawValue: $0.lowercased()) }
            guard !names.isEmpty, types.count == names.count else {
                let valid = MetricType.allCases.map(\.rawValue).joined(separator: ", ")
                throw located(file, checkNode, "\(label): 'type' must be one of \(valid) (or a list of them)")
            }
            check = .type(types)
        case "value":
            guard let text = checkNode.string, let predicate = ValuePredicate(parsing: text) else {
                throw located(file, checkNode, "\(label): 'value' must look like \"> 0\", \">= 1\", \"== 1\", \"between 0 100\" or finite")
            }
            let aggregateText = try string("aggregate") ?? "each"
            guard let aggregate = MetricRule.Aggregate(rawValue: aggregateText) else {
                throw located(file, fields["aggregate"], "\(label): 'aggregate' must be each or sum, not '\(aggregateText)'")
            }
            check = .value(predicate, aggregate: aggregate)
        case "label":
            guard let name = checkNode.string else { throw located(file, checkNode, "\(label): 'label' must be a label name") }
            var pattern: MetricRule.Pattern?
            if let source = try string("matches") {
                do {
                    pattern = try MetricRule.Pattern(source)
                } catch {
                    throw located(file, fields["matches"], "\(label): 'matches' is not a valid regular expression: \(error)")
                }
            }
            check = .label(name, matches: pattern)
        case "min_series":
            guard let minimum = checkNode.int, minimum >= 0 else {
                throw located(file, checkNode, "\(label): 'min_series' must be a whole number ≥ 0")
            }
            check = .seriesCount(atLeast: minimum)
        default:
            guard checkNode.string == "consistent" else { throw located(file, checkNode, "\(label): 'histogram' takes consistent") }
            check = .histogramConsistent
        }
        let severityText = try string("severity") ?? "fail"
        guard let severity = Finding.Status(rawValue: severityText), severity != .pass else {
            throw located(file, fields["severity"], "\(label): 'severity' must be fail or warn, not '\(severityText)'")
        }
        var filter: [Label] = []
        if let labelsNode = fields["labels"] {
            guard let labels = labelsNode.mapping else {
                throw located(file, labelsNode, "\(label): 'labels' must map label names to values")
            }
            for (key, value) in labels {
                guard let name = key.string, let value = value.string else {
                    throw located(file, key, "\(label): 'labels' entries must be name: value strings")
                }
                filter.append(Label(name: name, value: value))
            }
        }
        let onlyIfPresent = fields["only_if_present"]?.bool ?? false
        return MetricRule(id: id, metric: metric, check: check, severity: severity, labelFilter: filter,
                          sampleSuffix: try string("sample"), hint: try string("hint"), onlyIfPresent: onlyIfPresent)
    }

    private static func located(_ file: String, _ node: Node?, _ message: String) -> RuleFileError {
        RuleFileError(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1, message: message)
    }
}

/// A rules file that cannot be used, located as `file:line:column` like every other input error.
public struct RuleFileError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// Yams' parser errors carry the mark where the YAML went wrong.
    init(file: String, yaml error: YamlError) {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            self.init(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
        default:
            self.init(file: file, message: "invalid YAML: \(error)")
        }
    }

    public var description: String {
        let place = line.map { ":\($0)" + (column.map { ":\($0)" } ?? "") } ?? ""
        return "rules file \(file)\(place): \(message)"
    }
}
