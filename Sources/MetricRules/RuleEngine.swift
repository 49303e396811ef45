import Findings
import PromText

/// A named set of rules: a built-in profile or a rules file.
public struct RuleSet: Sendable {
    public var name: String
    public var rules: [MetricRule]
    /// Lenient-parse oddities this rule set knows by name (e.g. an exporter's known quirk): the generic finding
    /// for that kind gets this check ID and hint instead.
    public var knownOddities: [ParseOddity.Kind: KnownOddity]

    public struct KnownOddity: Sendable {
        public var checkID: String
        public var hint: String
        public init(checkID: String, hint: String) {
            self.checkID = checkID
            self.hint = hint
        }
    }

    public init(name: String, rules: [MetricRule], knownOddities: [ParseOddity.Kind: KnownOddity] = [:]) {
        self.name = name
        self.rules = rules
        self.knownOddities = knownOddities
    }
}

/// Evaluates rules against a parsed exposition. Pure: the same exposition and rules give the same findings.
public struct RuleEngine: Sendable {
    /// Failures listed one by one per rule; the rest are counted in one more finding.
    public var maxFailuresPerRule: Int

    public init(maxFailuresPerRule: Int = 10) {
        self.maxFailuresPerRule = maxFailuresPerRule
    }

    /// Runs the generic consistency rules, then every rule of every set, in order; `starting` is told each rule's
    /// id before it runs (so a caller that gave up waiting can name the rule that did not finish).
    public func evaluate(_ exposition: Exposition, ruleSets: [RuleSet] = [], starting: ((String) -> Void)? = nil) -> [Finding] {
        let index = FamilyIndex(exposition)
        var findings = GenericRules(limit: maxFailuresPerRule).evaluate(exposition, ruleSets: ruleSets)
        for ruleSet in ruleSets {
            for rule in ruleSet.rules {
                starting?(rule.id)
                findings += evaluate(rule, in: index)
            }
        }
        return findings
    }

    func evaluate(_ rule: MetricRule, in index: FamilyIndex) -> [Finding] {
        let family = index.family(for: rule.metric)
        if rule.onlyIfPresent, family?.samples.isEmpty ?? true {
            return [Finding.pass(rule.id, subject: rule.metric, observed: "absent (checked only when present)")]
        }
        guard let family else {
            return [finding(rule, subject: rule.metric, passed: false, expected: expectation(of: rule), observed: "absent")]
        }
        if case .type(let types) = rule.check {
            return [finding(rule, subject: family.name, passed: types.contains(family.type),
                            expected: "type " + types.map(\.rawValue).joined(separator: " or "),
                            observed: "type \(family.type.rawValue)")]
        }
        let samples = selectedSamples(of: family, for: rule)
        guard !samples.isEmpty else {
            let declared = family.samples.isEmpty ? "declared (# TYPE) but no series" : "no series match the rule's selection"
            return [finding(rule, subject: family.name, passed: false, expected: expectation(of: rule), observed: declared)]
        }
        switch rule.check {
        case .present:
            return [finding(rule, subject: family.name, passed: true, expected: "present", observed: "\(samples.count) series")]
        case .type:
            return []  // handled above
        case .value(let predicate, .sum):
            let total = samples.reduce(0.0) { $0 + $1.value }
            return [finding(rule, subject: family.name, passed: predicate.holds(for: total),
                            expected: "sum \(predicate)", observed: "sum \(format(total)) over \(samples.count) series")]
        case .value(let predicate, .each):
            let failing = samples.filter { !predicate.holds(for: $0.value) }
            return perSeries(rule, family: family, total: samples.count, failing: failing,
                             expected: "every series \(predicate)",
                             observed: { "value \(format($0.value))" },
                             summary: range(of: samples))
        case .label(let name, let pattern):
            let failing = samples.filter { sample in
                guard let value = sample.label(name) else { return true }
                return pattern.map { !$0.matches(value) } ?? false
            }
            let expected = pattern.map { "label \(name) matching \($0.source)" } ?? "label \(name)"
            return perSeries(rule, family: family, total: samples.count, failing: failing, expected: expected,
                             observed: { $0.label(name).map { "\(name)=\"\($0)\"" } ?? "no \(name) label" },
                             summary: "\(samples.count) series")
        case .seriesCount(let minimum):
            return [finding(rule, subject: family.name, passed: samples.count >= minimum,
                            expected: "at least \(minimum) series", observed: "\(samples.count) series")]
        case .histogramConsistent:
            let (seriesCount, problems) = HistogramCheck.check(family)
            return perSeries(rule, family: family, problems: problems, summary: "\(seriesCount) series")
        }
    }

    private func expectation(of rule: MetricRule) -> String {
        switch rule.check {
        case .present: "present with at least one series"
        case .type(let types): "type " + types.map(\.rawValue).joined(separator: " or ")
        case .value(let predicate, let aggregate): aggregate == .sum ? "sum \(predicate)" : "every series \(predicate)"
        case .label(let name, let pattern): pattern.map { "label \(name) matching \($0.source)" } ?? "label \(name) on every series"
        case .seriesCount(let minimum): "at least \(minimum) series"
        case .histogramConsistent: "consistent histogram"
        }
    }

    private func selectedSamples(of family: MetricFamily, for rule: MetricRule) -> [Sample] {
        let names = family.valueSampleNames(suffix: rule.sampleSuffix)
        return family.samples.filter { sample in
            names.contains(sample.name) && rule.labelFilter.allSatisfy { sample.label($0.name) == $0.value }
        }
    }

    private func finding(_ rule: MetricRule, subject: String, passed: Bool, expected: String, observed: String) -> Finding {
        Finding(checkID: rule.id, subject: subject, status: passed ? .pass : rule.severity,
                expected: expected, observed: observed, detail: passed ? nil : rule.hint)
    }

    private func perSeries(
        _ rule: MetricRule, family: MetricFamily, total: Int, failing: [Sample],
        expected: String, observed: (Sample) -> String, summary: String
    ) -> [Finding] {
        let problems = failing.map { (subject: $0.seriesDescription, expected: expected, observed: observed($0)) }
        return perSeries(rule, family: family, problems: problems, summary: summary)
    }

    private func perSeries(
        _ rule: MetricRule, family: MetricFamily, problems: [SeriesProblem], summary: String
    ) -> [Finding] {
        guard !problems.isEmpty else {
            return [Finding(checkID: rule.id, subject: family.name, status: .pass, expected: expectation(of: rule), observed: summary)]
        }
        var findings = problems.prefix(maxFailuresPerRule).map {
            Finding(checkID: rule.id, subject: $0.subject, status: rule.severity, expected: $0.expected,
                    observed: $0.observed, detail: rule.hint)
        }
        if problems.count > maxFailuresPerRule {
            findings.append(Finding(
                checkID: rule.id, subject: family.name, status: rule.severity, expected: expectation(of: rule),
                observed: "\(problems.count - maxFailuresPerRule) more series fail (\(problems.count) in all)"))
        }
        return findings
    }

    private func range(of samples: [Sample]) -> String {
        let values = samples.map(\.value)
        guard let low = values.min(), let high = values.max() else { return "no series" }
        return "\(samples.count) series, \(format(low))…\(format(high))"
    }
}

typealias SeriesProblem = (subject: String, expected: String, observed: String)

/// Finds families by the name a rule uses, tolerating OpenMetrics' counter naming (`x_total` → family `x`).
struct FamilyIndex {
    private var byName: [String: MetricFamily] = [:]

    init(_ exposition: Exposition) {
        for family in exposition.families where byName[family.name] == nil {
            byName[family.name] = family
        }
    }

    func family(for metric: String) -> MetricFamily? {
        if let family = byName[metric] { return family }
        // Only an OpenMetrics-style family (`x` with samples `x_total`), never `x_total` for a rule on `x_total_total`.
        if metric.hasSuffix("_total"), let family = byName[String(metric.dropLast(6))], family.type == .counter,
            !family.name.hasSuffix("_total")
        {
            return family
        }
        return nil
    }
}

extension MetricFamily {
    /// The sample names a value rule reads: with a suffix, `name+suffix`; otherwise the family's value samples.
    func valueSampleNames(suffix: String?) -> Set<String> {
        if let suffix { return [name + suffix] }
        switch type {
        case .counter: return [name, name + "_total"]
        case .histogram, .gaugehistogram, .summary: return [name + "_count", name + "_sum", name + "_bucket", name, name + "_gcount", name + "_gsum"]
        case .info: return [name + "_info", name]
        default: return [name]
        }
    }
}

extension Sample {
    /// `name{a="1",b="2"}`, as a user would search for it in the exposition.
    public var seriesDescription: String {
        guard !labels.isEmpty else { return name }
        let rendered = labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",")
        return "\(name){\(rendered)}"
    }
}
