/// Groups text-format (0.0.4) samples into families the way expfmt does, but leniently where Prometheus would
/// still scrape: interleaved families are merged, repeated series kept, a repeated HELP/TYPE recorded — each as a
/// `ParseOddity`. What Prometheus cannot ingest (unknown or conflicting TYPE, TYPE after samples, invalid `le` or
/// `quantile`, negative bucket counts) is a `ParseError`.
struct TextAssembler {
    /// How a sample name relates to its family (`x_bucket` of histogram `x`, …).
    private enum Role { case plain, bucket, sum, count }

    private struct FamilyState {
        var typeLine = 0
        var helpLine = 0
        /// Another family's line came after this family's lines.
        var left = false
    }

    private var families: [MetricFamily] = []
    private var states: [FamilyState] = []
    private var index: [String: Int] = [:]
    private var current = -1
    /// Recently resolved sample names (a histogram cycles through _sum, _bucket, _count); cleared by metadata.
    private var recent: [(hash: UInt64, name: String, family: Int, role: Role)] = []
    private var series = SeriesTable()
    /// Where each distinct series first appeared (family << 32 | sample index), by ordinal.
    private var locations: [Int] = []
    private var oddities = OddityLog()

    /// Takes one line; for `.sample` the sample is `sample` (the reader's, borrowed).
    mutating func add(_ content: LineContent, sample: RawSample, line: Int, columns: [Int]) throws(ParseError) {
        switch content {
        case .skip, .eof:
            return
        case .metadata(let metadata):
            try addMetadata(metadata, line: line)
        case .sample:
            try addSample(sample, line: line, columns: columns)
        }
    }

    func finish() -> Exposition {
        Exposition(format: .text, families: families, oddities: oddities.recorded,
                   suppressedOddities: oddities.suppressed)
    }

    // MARK: Metadata

    private mutating func addMetadata(_ metadata: Metadata, line: Int) throws(ParseError) {
        recent.removeAll(keepingCapacity: true)  // a TYPE can change how names resolve
        let i = index[metadata.name] ?? createFamily(metadata.name, line: line)
        enter(i, line: line)
        let name = metadata.name
        switch metadata.keyword {
        case .help:
            if states[i].helpLine != 0 {
                let differs = families[i].help != metadata.text ? "; the text differs, the first is kept" : ""
                oddities.record(.duplicateMetadata, family: name, line: line,
                                "second # HELP for \"\(name)\" (first on line \(states[i].helpLine))\(differs)")
            } else {
                families[i].help = metadata.text
                states[i].helpLine = line
            }
        case .type:
            if metadata.text.isEmpty {
                oddities.record(.other, family: name, line: line, "# TYPE line for \"\(name)\" names no type; ignored")
                return
            }
            guard let type = Self.textType(metadata.text) else {
                throw ParseError(line: line, column: metadata.textColumn, reason:
                    "unknown metric type \"\(metadata.text)\" for \"\(name)\" "
                    + "(expected counter, gauge, histogram, summary or untyped)")
            }
            if states[i].typeLine != 0 {
                guard families[i].type == type else {
                    throw ParseError(line: line, column: metadata.textColumn, reason:
                        "conflicting # TYPE for \"\(name)\": \(type.rawValue) here, "
                        + "\(families[i].type.rawValue) on line \(states[i].typeLine)")
                }
                oddities.record(.duplicateMetadata, family: name, line: line,
                                "second # TYPE for \"\(name)\" (first on line \(states[i].typeLine))")
            } else if let first = families[i].samples.first {
                throw ParseError(line: line, column: 1, reason:
                    "# TYPE for \"\(name)\" comes after its samples (first sample on line \(first.line))")
            } else {
                families[i].type = type
                states[i].typeLine = line
            }
        case .unit:
            return  // the text grammar never produces UNIT
        }
    }

    private static func textType(_ text: String) -> MetricType? {
        switch text.lowercased() {
        case "counter": return .counter
        case "gauge": return .gauge
        case "histogram": return .histogram
        case "summary": return .summary
        case "untyped": return .untyped
        default: return nil
        }
    }

    // MARK: Samples

    private mutating func addSample(_ raw: RawSample, line: Int, columns: [Int]) throws(ParseError) {
        let (i, role) = family(of: raw, line: line)
        if i != current { enter(i, line: line) }
        try Self.check(raw, role: role, type: families[i].type, line: line, columns: columns)
        families[i].samples.append(
            Sample(name: raw.name, labels: raw.labels, value: raw.value, timestamp: raw.timestamp, line: line))
        let location = i << 32 | (families[i].samples.count - 1)
        var probe = series.probe(raw.seriesHash)
        while let candidate = series.nextCandidate(&probe) {
            let earlier = locations[candidate]
            let first = families[earlier >> 32].samples[earlier & 0xFFFF_FFFF]
            let sample = families[i].samples[location & 0xFFFF_FFFF]
            if Self.sameSeries(first, sample) {
                oddities.record(.duplicateSeries, family: families[i].name, line: line,
                                "series \(Self.describe(sample)) repeats line \(first.line)")
                return
            }
        }
        series.insert(probe, ordinal: locations.count)
        locations.append(location)
    }

    private mutating func family(of raw: RawSample, line: Int) -> (Int, Role) {
        for entry in recent where entry.hash == raw.nameHash && entry.name == raw.name { return (entry.family, entry.role) }
        let (i, role) = resolve(raw.name, line: line)
        if recent.count == 4 { recent.removeFirst() }
        recent.append((raw.nameHash, raw.name, i, role))
        return (i, role)
    }

    private static let suffixRoles: [(String, Role)] = [("_bucket", .bucket), ("_sum", .sum), ("_count", .count)]

    /// The family a sample name belongs to: the exact name, else `_bucket`/`_sum`/`_count` of a declared
    /// histogram or summary, else a new untyped family.
    private mutating func resolve(_ name: String, line: Int) -> (Int, Role) {
        if let i = index[name] { return (i, .plain) }
        for (suffix, role) in Self.suffixRoles where name.hasSuffix(suffix) {
            guard let i = index[String(name.dropLast(suffix.count))] else { continue }
            switch (families[i].type, role) {
            case (.histogram, _), (.summary, .sum), (.summary, .count): return (i, role)
            default: continue
            }
        }
        return (createFamily(name, line: line), .plain)
    }

    private static func check(_ raw: RawSample, role: Role, type: MetricType, line: Int, columns: [Int]) throws(ParseError) {
        switch (type, role) {
        case (.histogram, .bucket):
            if raw.leIndex >= 0 && raw.leBound == nil {
                let le = raw.labels[raw.leIndex].value
                throw ParseError(line: line, column: columns[raw.leIndex], reason:
                    "expected a float as value of label \"le\" of \"\(raw.name)\", found \"\(le)\"")
            }
            if raw.value < 0 {
                throw ParseError(line: line, column: raw.valueColumn, reason:
                    "negative bucket count \(raw.value) for \"\(raw.name)\"")
            }
        case (.histogram, .count), (.summary, .count):
            if raw.value < 0 {
                throw ParseError(line: line, column: raw.valueColumn, reason:
                    "negative count \(raw.value) for \"\(raw.name)\"")
            }
        case (.summary, .plain):
            if raw.quantileIndex >= 0 && raw.quantileBound == nil {
                let quantile = raw.labels[raw.quantileIndex].value
                throw ParseError(line: line, column: columns[raw.quantileIndex], reason:
                    "expected a float as value of label \"quantile\" of \"\(raw.name)\", found \"\(quantile)\"")
            }
        default:
            break
        }
    }

    // MARK: Helpers

    private mutating func createFamily(_ name: String, line: Int) -> Int {
        families.append(MetricFamily(name: name, type: .untyped, line: line))
        states.append(FamilyState())
        index[name] = families.count - 1
        return families.count - 1
    }

    /// Makes family `i` current; a family with samples that is re-entered after other lines is interleaved.
    private mutating func enter(_ i: Int, line: Int) {
        guard i != current else { return }
        if current >= 0 { states[current].left = true }
        if states[i].left, let last = families[i].samples.last {
            oddities.record(.interleavedFamily, family: families[i].name, line: line,
                            "lines of \"\(families[i].name)\" resume after other families (its last sample was on "
                            + "line \(last.line)); merged into one family")
        }
        states[i].left = false
        current = i
    }

    private static func sameSeries(_ a: Sample, _ b: Sample) -> Bool {
        guard a.name == b.name, a.labels.count == b.labels.count else { return false }
        return a.labels.allSatisfy { label in b.labels.contains(label) }
    }

    static func describe(_ sample: Sample) -> String {
        let labels = sample.labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",")
        return labels.isEmpty ? sample.name : "\(sample.name){\(labels)}"
    }
}

/// Finds repeated series: an open-addressing table of 8-byte slots (32-bit fingerprint, 32-bit sample ordinal),
/// small enough to stay in cache for hundreds of thousands of series. A fingerprint match is only a candidate;
/// the caller confirms it by comparing the samples.
struct SeriesTable {
    struct Probe {
        fileprivate var index: Int
        fileprivate let fingerprint: UInt64
    }

    private var slots = [UInt64](repeating: 0, count: 1 << 12)
    private var count = 0

    /// Starts looking for `hash`.
    func probe(_ hash: UInt64) -> Probe {
        let fingerprint = (hash >> 32) == 0 ? 1 : hash >> 32
        return Probe(index: Self.home(fingerprint, mask: slots.count - 1), fingerprint: fingerprint)
    }

    /// The ordinal of the next entry with the probe's fingerprint, or nil at the first empty slot (where
    /// `insert` then puts the new entry).
    func nextCandidate(_ probe: inout Probe) -> Int? {
        let mask = slots.count - 1
        while true {
            let slot = slots[probe.index]
            if slot == 0 { return nil }
            probe.index = (probe.index + 1) & mask
            if slot >> 32 == probe.fingerprint {
                return Int(slot & 0xFFFF_FFFF)
            }
        }
    }

    /// Inserts `ordinal` at the empty slot a probe ended on (after `nextCandidate` returned nil).
    mutating func insert(_ probe: Probe, ordinal: Int) {
        slots[probe.index] = probe.fingerprint << 32 | UInt64(truncatingIfNeeded: ordinal)
        count += 1
        if count * 4 > slots.count * 3 { grow() }
    }

    private mutating func grow() {
        // A slot's fingerprint (its high half) is what its home is computed from.
        slots = doubled(slots, empty: 0, hash: { $0 == 0 ? nil : $0 >> 32 }) { fingerprint, mask in
            Self.home(fingerprint, mask: mask)
        }
    }

    /// Where probing starts: the fingerprint spread over the table.
    @inline(__always) private static func home(_ fingerprint: UInt64, mask: Int) -> Int {
        var h = fingerprint &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & mask
    }
}
