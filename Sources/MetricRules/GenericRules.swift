import Findings
import Foundation
import PromText

/// The consistency rules that run on every exposition, with or without a profile: what a careful scraper expects
/// of any exporter, beyond what the parser already enforced.
struct GenericRules {
    let limit: Int

    func evaluate(_ exposition: Exposition, ruleSets: [RuleSet]) -> [Finding] {
        var findings = [Finding.pass(
            "exposition.parsed", subject: exposition.format.rawValue,
            observed: "\(exposition.families.count) families, \(exposition.sampleCount) samples")]
        findings += oddityFindings(exposition.oddities, ruleSets: ruleSets)
        for family in exposition.families {
            switch family.type {
            case .histogram, .gaugehistogram:
                findings += capped("exposition.histogram-consistent", family: family, problems: HistogramCheck.problems(in: family),
                                   passObserved: "\(HistogramCheck.seriesCount(in: family)) series consistent")
            case .counter:
                let problems = family.samples
                    .filter { !$0.name.hasSuffix("_created") && ($0.value.isNaN || $0.value < 0) }
                    .map { (subject: $0.seriesDescription, expected: "counter ≥ 0", observed: "value \(format($0.value))") }
                findings += capped("exposition.counter-non-negative", family: family, problems: problems,
                                   passObserved: "\(family.samples.count) samples ≥ 0")
            case .summary:
                findings += capped("exposition.summary-consistent", family: family, problems: summaryProblems(family),
                                   passObserved: "\(family.samples.count) samples")
            default:
                break
            }
        }
        return findings
    }

    /// One warning per kind of oddity, naming the first families and counting the rest.
    private func oddityFindings(_ oddities: [ParseOddity], ruleSets: [RuleSet]) -> [Finding] {
        var byKind: [ParseOddity.Kind: [ParseOddity]] = [:]
        for oddity in oddities { byKind[oddity.kind, default: []].append(oddity) }
        return ParseOddity.Kind.allCases.compactMap { kind in
            guard let list = byKind[kind] else { return nil }
            let known = ruleSets.lazy.compactMap { $0.knownOddities[kind] }.first
            var families: [String] = []
            for oddity in list where !families.contains(oddity.family) { families.append(oddity.family) }
            let named = families.prefix(limit).joined(separator: ", ") + (families.count > limit ? ", …" : "")
            let first = list[0]
            return Finding.warn(
                known?.checkID ?? "exposition.\(kind.rawValue)",
                subject: named,
                expected: "no \(kind.rawValue.replacingOccurrences(of: "-", with: " "))",
                observed: "\(list.count) occurrence(s) in \(families.count) families; first at line \(first.line): \(first.message)",
                detail: known?.hint ?? "Prometheus still scrapes this, but stricter consumers (OpenMetrics, promtool) reject it.")
        }
    }

    private func summaryProblems(_ family: MetricFamily) -> [SeriesProblem] {
        family.samples.compactMap { sample in
            if sample.name == family.name, let quantile = sample.label("quantile") {
                guard let q = Double(quantile), q >= 0, q <= 1 else {
                    return (sample.seriesDescription, "quantile in [0, 1]", "quantile=\"\(quantile)\"")
                }
            } else if sample.name == family.name + "_count", sample.value.isNaN || sample.value < 0 {
                return (sample.seriesDescription, "_count ≥ 0", "value \(format(sample.value))")
            }
            return nil
        }
    }

    private func capped(_ id: String, family: MetricFamily, problems: [SeriesProblem], passObserved: String) -> [Finding] {
        guard !problems.isEmpty else { return [.pass(id, subject: family.name, observed: passObserved)] }
        var findings = problems.prefix(limit).map {
            Finding.fail(id, subject: $0.subject, expected: $0.expected, observed: $0.observed)
        }
        if problems.count > limit {
            findings.append(.fail(id, subject: family.name, observed: "\(problems.count - limit) more problems (\(problems.count) in all)"))
        }
        return findings
    }
}

/// Histogram consistency, per series (a label set without `le`): buckets cumulative in `le`, a `+Inf` bucket,
/// `+Inf` equal to `_count`, `_sum` finite, no negative counts.
enum HistogramCheck {
    private struct Series {
        var buckets: [(le: Double, value: Double)] = []
        var count: Double?
        var sum: Double?
        var name = ""
    }

    static func seriesCount(in family: MetricFamily) -> Int { group(family).count }

    static func problems(in family: MetricFamily) -> [SeriesProblem] {
        var problems: [SeriesProblem] = []
        for (_, series) in group(family).sorted(by: { $0.key < $1.key }) {
            let subject = series.name
            let buckets = series.buckets.sorted { $0.le < $1.le }
            if let negative = buckets.first(where: { $0.value < 0 || $0.value.isNaN }) {
                problems.append((subject, "bucket counts ≥ 0", "le=\"\(format(negative.le))\" has \(format(negative.value))"))
            }
            for (previous, next) in zip(buckets, buckets.dropFirst()) where next.value < previous.value {
                problems.append((subject, "buckets non-decreasing in le",
                                 "le=\"\(format(next.le))\" \(format(next.value)) < le=\"\(format(previous.le))\" \(format(previous.value))"))
                break
            }
            guard let infinity = buckets.last(where: { $0.le == .infinity }) else {
                problems.append((subject, "a +Inf bucket", buckets.isEmpty ? "no buckets" : "highest le=\"\(format(buckets.last!.le))\""))
                continue
            }
            if let count = series.count, count != infinity.value {
                problems.append((subject, "_count == +Inf bucket", "_count \(format(count)), +Inf bucket \(format(infinity.value))"))
            }
            if let sum = series.sum, !sum.isFinite {
                problems.append((subject, "_sum finite", "_sum \(format(sum))"))
            }
        }
        return problems
    }

    /// Groups the family's samples by label set without `le`. The key is the rendered label set.
    private static func group(_ family: MetricFamily) -> [String: Series] {
        let gauge = family.type == .gaugehistogram
        let bucketName = family.name + "_bucket"
        let countName = family.name + (gauge ? "_gcount" : "_count")
        let sumName = family.name + (gauge ? "_gsum" : "_sum")
        var groups: [String: Series] = [:]
        for sample in family.samples {
            let others = sample.labels.filter { $0.name != "le" }
            let key = others.map { "\($0.name)=\"\($0.value)\"" }.sorted().joined(separator: ",")
            var series = groups[key] ?? Series(name: key.isEmpty ? family.name : "\(family.name){\(key)}")
            switch sample.name {
            case bucketName:
                let le = sample.label("le").flatMap { parseBound($0) } ?? .nan
                series.buckets.append((le, sample.value))
            case countName: series.count = sample.value
            case sumName: series.sum = sample.value
            default: break
            }
            groups[key] = series
        }
        return groups
    }

    private static func parseBound(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf", "inf", "+inf": .infinity
        default: Double(text)
        }
    }
}
