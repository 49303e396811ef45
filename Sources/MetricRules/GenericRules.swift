import Findings
import Foundation
import PromText

/// The consistency rules that run on every exposition, with or without a profile: what a careful scraper expects
/// of any exporter, beyond what the parser already enforced.
struct GenericRules {
    let limit: Int

    func evaluate(_ exposition: Exposition, ruleSets: [RuleSet]) -> [Finding] {
        var findings = [Finding.pass(
            GenericCheck.parsed, subject: exposition.format.rawValue,
            observed: "\(exposition.families.count) families, \(exposition.sampleCount) samples")]
        findings += oddityFindings(exposition.oddities, ruleSets: ruleSets)
        for family in exposition.families {
            switch family.type {
            case .histogram, .gaugehistogram:
                let (seriesCount, problems) = HistogramCheck.check(family)
                findings += capped(GenericCheck.histogramConsistent, family: family, problems: problems,
                                   passObserved: "\(seriesCount) series consistent")
            case .counter:
                let problems = family.samples
                    .filter { ($0.value.isNaN || $0.value < 0) && !$0.name.hasSuffix("_created") }
                    .map { (subject: $0.seriesDescription, expected: "counter ≥ 0", observed: "value \(format($0.value))") }
                findings += capped(GenericCheck.counterNonNegative, family: family, problems: problems,
                                   passObserved: "\(family.samples.count) samples ≥ 0")
            case .summary:
                findings += capped(GenericCheck.summaryConsistent, family: family, problems: summaryProblems(family),
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
                guard let q = ExpositionNumber.parseFloat(quantile), q >= 0, q <= 1 else {
                    return (sample.seriesDescription, "quantile in [0, 1]", "quantile=\"\(quantile)\"")
                }
            } else if sample.name == family.name + "_count", sample.value.isNaN || sample.value < 0 {
                return (sample.seriesDescription, "_count ≥ 0", "value \(format(sample.value))")
            }
            return nil
        }
    }

    private func capped(_ id: String, family: MetricFamily, problems: [SeriesProblem], passObserved: String) -> [Finding] {
        let about = Finding.Subject(metric: family.name)
        guard !problems.isEmpty else { return [.init(checkID: id, subject: family.name, status: .pass, observed: passObserved, about: about)] }
        var findings = problems.prefix(limit).map {
            Finding(checkID: id, subject: $0.subject, status: .fail, expected: $0.expected, observed: $0.observed, about: about)
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
        var labels: [Label]
        var buckets: [(le: Double, value: Double)] = []
        var count: Double?
        var sum: Double?
    }

    /// How many series the family has, and what is wrong with them. One pass over the samples: this is the hot
    /// path of `kverify metrics` on large expositions, so series are keyed by their label arrays, not strings.
    static func check(_ family: MetricFamily) -> (seriesCount: Int, problems: [SeriesProblem]) {
        let groups = group(family)
        var problems: [SeriesProblem] = []
        for series in groups {
            lazy var subject = describe(family.name, series.labels)  // built only for a series with a problem
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
                let highest = buckets.last.map { "highest le=\"\(format($0.le))\"" } ?? "no buckets"
                problems.append((subject, GenericCheck.infBucketExpectation, highest))
                continue
            }
            if let count = series.count, count != infinity.value {
                problems.append((subject, "_count == +Inf bucket", "_count \(format(count)), +Inf bucket \(format(infinity.value))"))
            }
            if let sum = series.sum, !sum.isFinite {
                problems.append((subject, "_sum finite", "_sum \(format(sum))"))
            }
        }
        return (groups.count, problems)
    }

    /// Groups the family's samples by label set without `le`, in order of first appearance.
    private static func group(_ family: MetricFamily) -> [Series] {
        let gauge = family.type == .gaugehistogram
        let bucketName = family.name + "_bucket"
        let countName = family.name + (gauge ? "_gcount" : "_count")
        let sumName = family.name + (gauge ? "_gsum" : "_sum")
        // Series by a cheap fingerprint of their sorted labels (hashing `[Label]` through `Hasher` cost more than
        // the rest of the check); groups with the same fingerprint are chained and compared label by label.
        var firstWithFingerprint: [UInt64: Int] = [:]
        var nextWithSameFingerprint: [Int] = []  // parallel to `groups`; -1 ends a chain
        var groups: [Series] = []
        // A series' buckets, count and sum are usually adjacent: compare with the previous sample's labels (in
        // their written order, without allocating) before building a key and hashing it.
        var previous: (written: [Label], position: Int)?
        // Every series lists the same bounds in the same order: the k-th bucket's `le` text is usually the one the
        // previous series had at k (one comparison of interned strings instead of parsing it again).
        var boundsByIndex: [(text: String, bound: Double)] = []
        for sample in family.samples {
            let position: Int
            if let previous, sameLabelsIgnoringLE(sample.labels, previous.written) {
                position = previous.position
            } else {
                let written = sample.labels.filter { $0.name != "le" }
                // The same series may list its labels in another order on another line.
                let key = written.isSorted(by: { $0.name < $1.name }) ? written : written.sorted { $0.name < $1.name }
                let fingerprint = Self.fingerprint(key)
                let chain = firstWithFingerprint[fingerprint] ?? -1
                var candidate = chain
                while candidate >= 0 && groups[candidate].labels != key { candidate = nextWithSameFingerprint[candidate] }
                if candidate >= 0 {
                    position = candidate
                } else {
                    position = groups.count
                    nextWithSameFingerprint.append(chain)
                    firstWithFingerprint[fingerprint] = position
                    groups.append(Series(labels: key))
                    groups[position].buckets.reserveCapacity(boundsByIndex.count)
                }
                previous = (written, position)
            }
            switch sample.name {
            case bucketName:
                let k = groups[position].buckets.count
                let bound = sample.label("le").map { le in
                    if k < boundsByIndex.count && boundsByIndex[k].text == le { return boundsByIndex[k].bound }
                    let bound = ExpositionNumber.parseFloat(le) ?? .nan
                    if k < boundsByIndex.count {
                        boundsByIndex[k] = (le, bound)
                    } else if k == boundsByIndex.count {
                        boundsByIndex.append((le, bound))
                    }
                    return bound
                } ?? .nan
                groups[position].buckets.append((bound, sample.value))
            case countName: groups[position].count = sample.value
            case sumName: groups[position].sum = sample.value
            default: break
            }
        }
        return groups
    }

    /// FNV-1a over the label names and values, with a separator after each so that `a="bc"` and `ab="c"` differ.
    /// Series are told apart with Swift's `==` (as everywhere in kverify), which calls canonically equivalent text
    /// equal ("é" precomposed or decomposed), so a string with non-ASCII bytes adds a constant instead of its bytes:
    /// equal strings must give equal fingerprints, whatever their bytes.
    private static func fingerprint(_ labels: [Label]) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for label in labels {
            mix(label.name, into: &hash)
            hash = (hash ^ 0x100) &* 0x100_0000_01B3
            mix(label.value, into: &hash)
            hash = (hash ^ 0x200) &* 0x100_0000_01B3
        }
        return hash
    }

    private static func mix(_ text: String, into hash: inout UInt64) {
        var mixed = hash
        var bytesOr: UInt8 = 0
        for byte in text.utf8 {
            mixed = (mixed ^ UInt64(byte)) &* 0x100_0000_01B3
            bytesOr |= byte
        }
        hash = bytesOr < 0x80 ? mixed : (hash ^ 0x300) &* 0x100_0000_01B3
    }

    private static func sameLabelsIgnoringLE(_ labels: [Label], _ written: [Label]) -> Bool {
        var matched = 0
        for label in labels where label.name != "le" {
            guard matched < written.count, written[matched] == label else { return false }
            matched += 1
        }
        return matched == written.count
    }

    private static func describe(_ name: String, _ labels: [Label]) -> String {
        labels.isEmpty ? name : "\(name){\(labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ","))}"
    }
}

extension Array {
    fileprivate func isSorted(by areInIncreasingOrder: (Element, Element) -> Bool) -> Bool {
        zip(self, dropFirst()).allSatisfy { !areInIncreasingOrder($1, $0) }
    }
}
