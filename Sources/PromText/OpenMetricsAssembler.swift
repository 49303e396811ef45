/// Groups OpenMetrics 1.0 samples into families and enforces the family-level rules: metadata before samples,
/// one HELP/TYPE/UNIT each, no interleaving and no name clashes between families, contiguous groups with
/// non-decreasing timestamps, per-type rules (histogram buckets, `le`, `quantile`, stateset/info values,
/// counter-like values, where exemplars may appear) and `# EOF` at the end.
struct OpenMetricsAssembler {
    /// The sample-name suffixes a family type owns.
    private enum Suffix: String {
        case none = "", total = "_total", created = "_created", count = "_count", sum = "_sum", bucket = "_bucket"
        case gcount = "_gcount", gsum = "_gsum", info = "_info"
    }

    /// The family being read, with what the grouping rules need. Groups and series are identified by
    /// order-independent label hashes (a 64-bit collision could only produce a false rejection).
    private struct Open {
        var family: MetricFamily
        var declaredType: MetricType?
        var unitLine = 0
        var unitColumn = 0
        var helpSeen = false
        var allowedNames: [String]
        var allowedSuffixes: [Suffix]
        var group: UInt64?
        var groupTimestamp: Double?
        var seenGroups: Set<UInt64> = []
        var groupSeries: Set<UInt64> = []
        /// Per sample: its group hash and suffix, for the histogram check at the end.
        var sampleGroups: [UInt64] = []
        var sampleSuffixes: [Suffix] = []

        init(family: MetricFamily, declaredType: MetricType? = nil) {
            self.family = family
            self.declaredType = declaredType
            allowedNames = [family.name]
            allowedSuffixes = [.none]
        }
    }

    private var families: [MetricFamily] = []
    private var seenNames: Set<String> = []
    private var current: Open?
    private(set) var sawEOF = false

    /// Takes one line; for `.sample` the sample is `sample` (the reader's, borrowed).
    mutating func add(
        _ content: LineContent, sample: RawSample, line: Int, columns: [Int], pairHashes: [UInt64]
    ) throws(ParseError) {
        switch content {
        case .skip:
            return
        case .eof:
            sawEOF = true
        case .metadata(let metadata):
            try addMetadata(metadata, line: line)
        case .sample:
            try addSample(sample, line: line, columns: columns, pairHashes: pairHashes)
        }
    }

    mutating func finish(lastLine: Int) throws(ParseError) -> Exposition {
        try close()
        guard sawEOF else {
            throw ParseError(line: lastLine + 1, column: 1, reason: "missing '# EOF' at the end of OpenMetrics input")
        }
        return Exposition(format: .openMetrics, families: families, oddities: [])
    }

    // MARK: Metadata

    private mutating func addMetadata(_ metadata: Metadata, line: Int) throws(ParseError) {
        let name = metadata.name
        let keyword = metadata.keyword.rawValue
        if let open = current, open.family.name == name {
            if let first = open.family.samples.first {
                throw ParseError(line: line, column: 1, reason:
                    "# \(keyword) for \"\(name)\" comes after its samples (first sample on line \(first.line)); "
                    + "OpenMetrics puts metadata first")
            }
        } else {
            try close()
            current = Open(family: MetricFamily(name: name, type: .unknown, line: line))
        }
        switch metadata.keyword {
        case .help:
            guard !current!.helpSeen else { throw ParseError(line: line, column: 1, reason: "second # HELP for \"\(name)\"") }
            current!.helpSeen = true
            current!.family.help = metadata.text
        case .type:
            guard current!.declaredType == nil else {
                throw ParseError(line: line, column: 1, reason: "second # TYPE for \"\(name)\"")
            }
            guard let type = Self.openMetricsType(metadata.text) else {
                let hint = metadata.text == "untyped" ? " (\"untyped\" is text format 0.0.4; OpenMetrics says \"unknown\")" : ""
                throw ParseError(line: line, column: metadata.textColumn, reason:
                    "unknown metric type \"\(metadata.text)\" for \"\(name)\" (expected counter, gauge, histogram, "
                    + "gaugehistogram, summary, stateset, info or unknown)\(hint)")
            }
            current!.declaredType = type
            current!.allowedSuffixes = Self.suffixes(of: type)
            current!.allowedNames = current!.allowedSuffixes.map { name + $0.rawValue }
        case .unit:
            guard current!.unitLine == 0 else { throw ParseError(line: line, column: 1, reason: "second # UNIT for \"\(name)\"") }
            if let bad = metadata.text.utf8.firstIndex(where: { !isMetricNameChar($0) }) {
                let offset = metadata.text.utf8.distance(from: metadata.text.utf8.startIndex, to: bad)
                throw ParseError(line: line, column: metadata.textColumn + offset, reason:
                    "invalid character \(describeByte(metadata.text.utf8[bad])) in unit \"\(metadata.text)\" of \"\(name)\"")
            }
            current!.unitLine = line
            current!.unitColumn = metadata.textColumn
            current!.family.unit = metadata.text.isEmpty ? nil : metadata.text
        }
    }

    private static func openMetricsType(_ text: String) -> MetricType? {
        switch text {
        case "counter": return .counter
        case "gauge": return .gauge
        case "histogram": return .histogram
        case "gaugehistogram": return .gaugehistogram
        case "summary": return .summary
        case "stateset": return .stateset
        case "info": return .info
        case "unknown": return .unknown
        default: return nil
        }
    }

    /// The sample-name suffixes a family of `type` owns.
    private static func suffixes(of type: MetricType) -> [Suffix] {
        switch type {
        case .counter: return [.total, .created]
        case .summary: return [.none, .count, .sum, .created]
        case .histogram: return [.count, .sum, .bucket, .created]
        case .gaugehistogram: return [.gcount, .gsum, .bucket]
        case .info: return [.info]
        default: return [.none]
        }
    }

    // MARK: Samples

    private mutating func addSample(_ raw: RawSample, line: Int, columns: [Int], pairHashes: [UInt64]) throws(ParseError) {
        var position = current?.allowedNames.firstIndex(of: raw.name)
        if position == nil {
            try close()
            // A sample without metadata starts a family of type unknown.
            current = Open(family: MetricFamily(name: raw.name, type: .unknown, line: line), declaredType: .unknown)
            position = 0
        }
        let name = current!.family.name
        let type = current!.declaredType ?? .unknown
        let suffix = current!.allowedSuffixes[position!]
        let error = { (column: Int, reason: String) in ParseError(line: line, column: column, reason: reason) }
        var groupHash = raw.labelsHash  // the label set without le / quantile / the stateset label

        if type == .stateset {
            guard let state = raw.labels.firstIndex(where: { $0.name == name }) else {
                throw error(1, "stateset sample \"\(raw.name)\" needs a label named \"\(name)\" for its state")
            }
            groupHash &-= pairHashes[state]
        }
        if (type == .histogram || type == .gaugehistogram) && suffix == .bucket {
            guard raw.leIndex >= 0 else { throw error(1, "histogram bucket \"\(raw.name)\" has no \"le\" label") }
            let le = raw.labels[raw.leIndex].value
            let column = columns[raw.leIndex]
            guard let bound = raw.leBound, !bound.isNaN else {
                throw error(column, "invalid \"le\" value \"\(le)\" on \"\(raw.name)\" (expected a float, not NaN)")
            }
            if bound == .infinity && le != "+Inf" {
                throw error(column, "\"le\" value \"\(le)\" on \"\(raw.name)\" must be written \"+Inf\"")
            }
            if !Self.isInteger(raw.value) {
                throw error(raw.valueColumn, "bucket value \(raw.value) of \"\(raw.name)\" is not an integer")
            }
            groupHash &-= pairHashes[raw.leIndex]
        }
        if (suffix == .count || suffix == .gcount) && !Self.isInteger(raw.value) {
            throw error(raw.valueColumn, "count value \(raw.value) of \"\(raw.name)\" is not an integer")
        }
        if type == .summary && suffix == .none {
            guard raw.quantileIndex >= 0 else {
                throw error(1, "summary quantile sample \"\(raw.name)\" has no \"quantile\" label")
            }
            let text = raw.labels[raw.quantileIndex].value
            guard let quantile = raw.quantileBound, quantile >= 0, quantile <= 1 else {
                throw error(columns[raw.quantileIndex],
                            "invalid \"quantile\" value \"\(text)\" on \"\(raw.name)\" (expected a float in 0…1)")
            }
            if raw.value < 0 {
                throw error(raw.valueColumn, "quantile value \(raw.value) of \"\(raw.name)\" is negative")
            }
            groupHash &-= pairHashes[raw.quantileIndex]
        }
        if type == .info { groupHash = 0 }  // all info samples form one group
        try checkGrouping(raw, groupHash: groupHash, type: type, line: line)
        if type == .stateset && raw.value != 0 && raw.value != 1 {
            throw error(raw.valueColumn, "stateset value of \"\(raw.name)\" must be 0 or 1, found \(raw.value)")
        }
        if type == .info && raw.value != 1 {
            throw error(raw.valueColumn, "info value of \"\(raw.name)\" must be 1, found \(raw.value)")
        }
        switch suffix {
        case .total, .sum, .count, .bucket, .gcount, .gsum:
            if raw.value.isNaN { throw error(raw.valueColumn, "\"\(raw.name)\" is counter-like and cannot be NaN") }
            if suffix != .gsum && raw.value < 0 {
                throw error(raw.valueColumn, "\"\(raw.name)\" is counter-like and cannot be negative (\(raw.value))")
            }
        case .none, .created, .info:
            break
        }
        if raw.exemplar != nil {
            let allowed = ((type == .histogram || type == .gaugehistogram) && suffix == .bucket)
                || (type == .counter && suffix == .total)
            if !allowed {
                throw error(raw.exemplarColumn,
                            "exemplar on \"\(raw.name)\": only histogram/gaugehistogram buckets and counter _total "
                            + "samples may carry exemplars")
            }
        }
        current!.family.samples.append(Sample(
            name: raw.name, labels: raw.labels, value: raw.value, timestamp: raw.timestamp, exemplar: raw.exemplar,
            line: line))
        current!.sampleGroups.append(groupHash)
        current!.sampleSuffixes.append(suffix)
    }

    /// Samples of one group (same labels apart from le/quantile/state) are contiguous, all with or all
    /// without timestamps, timestamps never decreasing, and a series repeats only with a timestamp.
    private mutating func checkGrouping(_ raw: RawSample, groupHash: UInt64, type: MetricType, line: Int) throws(ParseError) {
        let name = current!.family.name
        let column = raw.timestamp == nil ? raw.valueColumn : raw.timestampColumn
        if let previous = current!.group, previous == groupHash {
            if (raw.timestamp == nil) != (current!.groupTimestamp == nil) {
                throw ParseError(line: line, column: column, reason:
                    "\"\(raw.name)\" mixes samples with and without timestamps in one group")
            }
            if let before = current!.groupTimestamp, let now = raw.timestamp, before > now, type != .info {
                throw ParseError(line: line, column: column, reason:
                    "timestamp of \"\(raw.name)\" went backwards (\(now) after \(before))")
            }
        } else {
            if current!.group != nil && current!.seenGroups.contains(groupHash) {
                let grouping = raw.labels.filter { $0.name != "le" && $0.name != "quantile" && $0.name != name }
                throw ParseError(line: line, column: 1, reason:
                    "samples of \"\(name)\" with labels \(Self.describe(grouping)) are not contiguous "
                    + "(OpenMetrics forbids interleaving groups)")
            }
            current!.groupSeries.removeAll(keepingCapacity: true)
        }
        if raw.timestamp == nil && current!.groupSeries.contains(raw.seriesHash) {
            throw ParseError(line: line, column: 1, reason:
                "duplicate sample \(TextAssembler.describe(Sample(name: raw.name, labels: raw.labels, value: 0, line: 0))) "
                + "(OpenMetrics repeats a series only with timestamps)")
        }
        current!.groupSeries.insert(raw.seriesHash)
        current!.group = groupHash
        current!.groupTimestamp = raw.timestamp
        current!.seenGroups.insert(groupHash)
    }

    // MARK: Closing a family

    private mutating func close() throws(ParseError) {
        guard var open = current else { return }
        current = nil
        let name = open.family.name
        let type = open.declaredType ?? .unknown
        open.family.type = type
        var owned: [Suffix] = [.none]
        for suffix in Self.suffixes(of: type) where !owned.contains(suffix) { owned.append(suffix) }
        for suffix in owned {
            let full = name + suffix.rawValue
            if seenNames.contains(full) {
                throw ParseError(line: open.family.line, column: 1, reason:
                    "family \"\(name)\" (\(type.rawValue)) claims the name \"\(full)\", already used by an earlier "
                    + "family; OpenMetrics names must not clash or repeat")
            }
            seenNames.insert(full)
        }
        if let unit = open.family.unit {
            if !name.hasSuffix("_" + unit) {
                throw ParseError(line: open.unitLine, column: open.unitColumn, reason:
                    "unit \"\(unit)\" does not match metric name \"\(name)\" (the name must end in \"_\(unit)\")")
            }
            if type == .info || type == .stateset {
                throw ParseError(line: open.unitLine, column: open.unitColumn, reason:
                    "\(type.rawValue) family \"\(name)\" cannot have a unit")
            }
        }
        if type == .histogram || type == .gaugehistogram {
            try Self.checkHistogram(open.family, groups: open.sampleGroups, suffixes: open.sampleSuffixes)
        }
        families.append(open.family)
    }

    /// Per group (labels without `le`) and timestamp: buckets in increasing `le` order with non-decreasing
    /// counts ending at +Inf, `_count` equal to the +Inf bucket, `_sum`/`_count` present together, and the
    /// sign rules for negative buckets.
    private static func checkHistogram(
        _ family: MetricFamily, groups: [UInt64], suffixes: [Suffix]
    ) throws(ParseError) {
        struct GroupState {
            var count: Double?
            var bucket: Double?
            var value = 0.0
            var negativeBuckets = false
            var hasSum = false
            var hasGSum = false
            var negativeGSum = false
            var lastLine = 0
        }
        let name = family.name
        func finishGroup(_ g: GroupState) throws(ParseError) {
            let fail = { (reason: String) in ParseError(line: g.lastLine, column: 1, reason: reason) }
            if g.bucket != .infinity { throw fail("histogram \"\(name)\" has no le=\"+Inf\" bucket (or it is not the last)") }
            if let count = g.count, count != g.value {
                throw fail("histogram \"\(name)\": _count \(count) differs from the +Inf bucket \(g.value)")
            }
            if g.hasSum && g.count == nil { throw fail("histogram \"\(name)\" has _sum but no _count") }
            if g.hasGSum && g.count == nil { throw fail("gaugehistogram \"\(name)\" has _gsum but no _gcount") }
            if !(g.hasSum || g.hasGSum) && g.count != nil { throw fail("histogram \"\(name)\" has _count but no _sum") }
            if g.negativeBuckets && g.hasSum { throw fail("histogram \"\(name)\" has negative buckets, so it cannot have _sum") }
            if !g.negativeBuckets && g.negativeGSum {
                throw fail("gaugehistogram \"\(name)\" has a negative _gsum but no negative buckets")
            }
        }
        var state: GroupState?
        var group: UInt64 = 0
        var timestamp: Double?
        for (index, sample) in family.samples.enumerated() {
            let suffix = suffixes[index]
            let key = groups[index]
            if state == nil || key != group || sample.timestamp != timestamp {
                if let finished = state { try finishGroup(finished) }
                state = GroupState()
            }
            group = key
            timestamp = sample.timestamp
            state!.lastLine = sample.line
            switch suffix {
            case .bucket:
                let bound = sample.label("le").flatMap(ExpositionNumber.parseFloat) ?? .nan
                if bound < 0 { state!.negativeBuckets = true }
                if let previous = state!.bucket, bound <= previous {
                    throw ParseError(line: sample.line, column: 1, reason:
                        "buckets of histogram \"\(name)\" are not in increasing \"le\" order (\(bound) after \(previous))")
                }
                if sample.value < state!.value {
                    throw ParseError(line: sample.line, column: 1, reason:
                        "bucket counts of histogram \"\(name)\" decrease (\(sample.value) after \(state!.value)); "
                        + "buckets are cumulative")
                }
                state!.bucket = bound
                state!.value = sample.value
            case .count, .gcount:
                state!.count = sample.value
            case .sum:
                state!.hasSum = true
            case .gsum:
                state!.hasGSum = true
                if sample.value < 0 { state!.negativeGSum = true }
            default:
                break
            }
        }
        if let finished = state { try finishGroup(finished) }
    }

    private static func isInteger(_ value: Double) -> Bool {
        value.isFinite && value.rounded(.towardZero) == value
    }

    private static func describe(_ labels: [Label]) -> String {
        "{" + labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }
}
