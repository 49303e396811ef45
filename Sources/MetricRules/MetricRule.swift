import Findings
import PromText

/// One declarative check on a metric family, from a built-in profile or a YAML rules file.
public struct MetricRule: Sendable {
    /// What the rule asserts about the family.
    public enum Check: Sendable {
        /// The family exists and has at least one series.
        case present
        /// The family's declared type is one of these.
        case type([MetricType])
        /// A predicate on values: every selected series, or their sum.
        case value(ValuePredicate, aggregate: Aggregate)
        /// Every selected series carries the label; with a pattern, its value matches the whole pattern.
        case label(String, matches: Pattern?)
        /// At least this many selected series.
        case seriesCount(atLeast: Int)
        /// Buckets cumulative in `le`, a `+Inf` bucket equal to `_count`, `_sum` finite.
        case histogramConsistent
    }

    public enum Aggregate: String, Sendable, CaseIterable {
        case each, sum
    }

    /// A regular expression with its source text, so findings can print what was expected.
    public struct Pattern: @unchecked Sendable {  // Regex is immutable once built; it is not marked Sendable.
        public let source: String
        let regex: Regex<AnyRegexOutput>

        public init(_ source: String) throws {
            self.source = source
            regex = try Regex(source)
        }

        func matches(_ text: String) -> Bool { (try? regex.wholeMatch(in: text)) != nil }
    }

    public var id: String
    /// Family name; `x_total` also finds an OpenMetrics counter family `x`.
    public var metric: String
    public var check: Check
    /// `fail` for rules that must hold, `warn` for advice.
    public var severity: Finding.Status
    /// Only series whose labels have these exact values are considered.
    public var labelFilter: [Label]
    /// For histograms and summaries: which samples a value rule reads (`_count`, `_sum`, `_bucket`); default is
    /// the family's own value samples (`_total` for counters, everything but `_created` otherwise).
    public var sampleSuffix: String?
    /// Shown with a failure: why it matters or what to do.
    public var hint: String?
    /// For series that exist only sometimes (restart counters): an absent family passes.
    public var onlyIfPresent: Bool

    public init(
        id: String,
        metric: String,
        check: Check,
        severity: Finding.Status = .fail,
        labelFilter: [Label] = [],
        sampleSuffix: String? = nil,
        hint: String? = nil,
        onlyIfPresent: Bool = false
    ) {
        self.id = id
        self.metric = metric
        self.check = check
        self.severity = severity
        self.labelFilter = labelFilter
        self.sampleSuffix = sampleSuffix
        self.hint = hint
        self.onlyIfPresent = onlyIfPresent
    }
}

/// A comparison on a sample value: `> 0`, `>= 1`, `< 5`, `<= 5`, `== 1`, `!= 0`, `between 0 100`, `finite`.
public struct ValuePredicate: Sendable, Hashable, CustomStringConvertible {
    public enum Operator: String, Sendable, CaseIterable {
        case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<=", equal = "==", notEqual = "!="
    }

    enum Form: Sendable, Hashable {
        case compare(Operator, Double)
        case between(Double, Double)
        case finite
    }

    let form: Form

    public static func compare(_ op: Operator, _ bound: Double) -> ValuePredicate { ValuePredicate(form: .compare(op, bound)) }
    public static func between(_ low: Double, _ high: Double) -> ValuePredicate { ValuePredicate(form: .between(low, high)) }
    public static let finite = ValuePredicate(form: .finite)

    /// Parses the text form used in rule files. Returns nil for anything else.
    public init?(parsing text: String) {
        let words = text.split(separator: " ").map(String.init)
        switch words.count {
        case 1 where words[0] == "finite":
            form = .finite
        case 2:
            // NaN compares false with everything: a rule bounded by it could never pass.
            guard let op = Operator(rawValue: words[0]), let bound = Double(words[1]), !bound.isNaN else { return nil }
            form = .compare(op, bound)
        case 3 where words[0] == "between":
            guard let low = Double(words[1]), let high = Double(words[2]), low <= high else { return nil }
            form = .between(low, high)
        default:
            return nil
        }
    }

    private init(form: Form) { self.form = form }

    /// NaN satisfies nothing; `±Inf` satisfies only comparisons, never `finite` or `between`.
    public func holds(for value: Double) -> Bool {
        if value.isNaN { return false }
        switch form {
        case .finite: return value.isFinite
        case .between(let low, let high): return value.isFinite && low <= value && value <= high
        case .compare(let op, let bound):
            switch op {
            case .greater: return value > bound
            case .greaterOrEqual: return value >= bound
            case .less: return value < bound
            case .lessOrEqual: return value <= bound
            case .equal: return value == bound
            case .notEqual: return value != bound
            }
        }
    }

    public var description: String {
        switch form {
        case .finite: "finite"
        case .between(let low, let high): "between \(format(low)) and \(format(high))"
        case .compare(let op, let bound): "\(op.rawValue) \(format(bound))"
        }
    }
}

/// Formats a sample value the way the exposition formats write it.
func format(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return String(value)
}
