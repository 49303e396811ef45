/// The data model of a parsed exposition (Prometheus text 0.0.4 or OpenMetrics 1.0).

/// The wire formats kverify reads.
public enum ExpositionFormat: String, Sendable, Hashable, CaseIterable {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    case text
    /// OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
    case openMetrics = "openmetrics"
}

/// A family's declared type. Text format knows the first five; OpenMetrics adds the rest.
public enum MetricType: String, Sendable, Hashable, CaseIterable {
    case counter, gauge, histogram, summary, untyped
    case unknown, stateset, info, gaugehistogram
}

public struct Label: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct Exemplar: Sendable, Hashable {
    public var labels: [Label]
    public var value: Double
    /// Seconds since the epoch.
    public var timestamp: Double?

    public init(labels: [Label], value: Double, timestamp: Double?) {
        self.labels = labels
        self.value = value
        self.timestamp = timestamp
    }
}

public struct Sample: Sendable {
    /// The full sample name as written, e.g. `http_request_duration_seconds_bucket`.
    public var name: String
    public var labels: [Label]
    public var value: Double
    /// 1-based line of the sample in the input.
    public var line: Int
    // A large exposition holds hundreds of thousands of samples: the optionals below are stored in 8 bytes each
    // (NaN for no timestamp, a shared box for the rare exemplar), which takes a sample from 88 to 56 bytes.
    private var storedTimestamp: Double
    private var exemplarBox: ExemplarBox?

    /// Seconds since the epoch (text format's milliseconds are converted). Always finite when set: the parser
    /// rejects other timestamps, and a NaN assigned here reads back as nil.
    public var timestamp: Double? {
        get { storedTimestamp.isNaN ? nil : storedTimestamp }
        set { storedTimestamp = newValue ?? .nan }
    }

    public var exemplar: Exemplar? {
        get { exemplarBox?.exemplar }
        set { exemplarBox = newValue.map(ExemplarBox.init) }
    }

    public init(name: String, labels: [Label], value: Double, timestamp: Double? = nil, exemplar: Exemplar? = nil, line: Int) {
        self.name = name
        self.labels = labels
        self.value = value
        self.line = line
        storedTimestamp = timestamp ?? .nan
        exemplarBox = exemplar.map(ExemplarBox.init)
    }

    public func label(_ name: String) -> String? {
        labels.first { $0.name == name }?.value
    }
}

/// Immutable, so sharing one between copies of a `Sample` is safe.
private final class ExemplarBox: Sendable {
    let exemplar: Exemplar
    init(_ exemplar: Exemplar) { self.exemplar = exemplar }
}

public struct MetricFamily: Sendable {
    /// The family name: for OpenMetrics counters without `_total`, for histograms without `_bucket`.
    public var name: String
    public var type: MetricType
    public var help: String?
    public var unit: String?
    public var samples: [Sample]
    /// 1-based line where the family starts (its first metadata line or sample).
    public var line: Int

    public init(name: String, type: MetricType, help: String? = nil, unit: String? = nil, samples: [Sample] = [], line: Int) {
        self.name = name
        self.type = type
        self.help = help
        self.unit = unit
        self.samples = samples
        self.line = line
    }
}

/// Something Prometheus would still scrape but a careful reader should know about. Text mode records these
/// instead of failing; OpenMetrics mode rejects the same input.
public struct ParseOddity: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The same sample name and label set appeared twice.
        case duplicateSeries = "duplicate-series"
        /// A family's samples were split by another family's lines; they are merged.
        case interleavedFamily = "interleaved-family"
        /// A second `# TYPE` or `# HELP` for a family already seen (the exporter's sidecar-gauge quirk).
        case duplicateMetadata = "duplicate-metadata"
        /// Anything else lenient parsing let through (kept as free text in `message`).
        case other
    }

    public var kind: Kind
    public var family: String
    public var line: Int
    public var message: String

    public init(kind: Kind, family: String, line: Int, message: String) {
        self.kind = kind
        self.family = family
        self.line = line
        self.message = message
    }
}

/// A parse failure, located in the input.
public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line and column (column counts bytes of the line).
    public var line: Int
    public var column: Int
    public var reason: String

    public init(line: Int, column: Int, reason: String) {
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var description: String { "line \(line):\(column): \(reason)" }
}

/// A whole parsed input.
public struct Exposition: Sendable {
    public var format: ExpositionFormat
    /// Families in order of first appearance; interleaved text-format families are merged into one.
    public var families: [MetricFamily]
    /// At most `OddityLog.defaultLimit` (1000) oddities are kept; the rest are only counted.
    public var oddities: [ParseOddity]
    /// Oddities beyond the cap, counted but not kept (memory stays bounded on pathological input).
    public var suppressedOddities: Int

    public init(format: ExpositionFormat, families: [MetricFamily], oddities: [ParseOddity], suppressedOddities: Int = 0) {
        self.format = format
        self.families = families
        self.oddities = oddities
        self.suppressedOddities = suppressedOddities
    }

    public var sampleCount: Int { families.reduce(0) { $0 + $1.samples.count } }

    public func family(named name: String) -> MetricFamily? {
        families.first { $0.name == name }
    }
}
