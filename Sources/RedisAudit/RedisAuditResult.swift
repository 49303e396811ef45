import Findings

/// The numbers an audit measured, for reports and for callers that check more than findings.
public struct RedisAuditSummary: Sendable, Hashable, Codable {
    /// Keys of one exporter type (`counter`, `gauge_all`, …).
    public struct KindCounts: Sendable, Hashable, Codable {
        public var metric = 0
        public var meta = 0
        public init(metric: Int = 0, meta: Int = 0) {
            self.metric = metric
            self.meta = meta
        }
        public var total: Int { metric + meta }
    }

    /// Keys `SCAN` returned under the prefix (a key can be counted twice if Redis rehashed during the scan).
    public var keysScanned = 0
    /// Keys that expired between `SCAN` and `TYPE`/`PTTL`: expiry at work, not an error.
    public var keysVanished = 0
    /// Keys following the layout, per exporter type.
    public var keysByType: [String: KindCounts] = [:]
    /// Distinct writer pids (counted up to 10,000).
    public var processes = 0
    public var minTTLMilliseconds: Int64?
    public var maxTTLMilliseconds: Int64?
    /// Keys whose remaining TTL is within each quarter of the configured TTL: [0–25 %, 25–50 %, 50–75 %, 75–100 %].
    public var ttlQuartiles: [Int] = [0, 0, 0, 0]
    public var keysWithoutTTL = 0
    /// Keys without a TTL whose writer is one of `RedisAuditOptions.killedWriters` (not in `keysWithoutTTL`).
    public var keysWithoutTTLOfKilledWriters = 0
    /// Keys of killed writers left out of the metric/meta pairing (it may have died between the two writes).
    public var keysOfKilledWritersNotPaired = 0
    public var keysAboveTTL = 0
    public var unexpectedKeys = 0
    public var nonHashKeys = 0
    public var metricKeysWithoutMeta = 0
    public var metaKeysWithoutMetric = 0
    public var sampledHashes = 0
    public var hashesWithMissingFields = 0
    /// True when `DBSIZE` proved that every key of the database was a hash under the prefix, so the pass that
    /// looks for keys of other types (`SCAN` + `TYPE` per key) was skipped.
    public var typesProvenByCount = false
    /// Round trips: `SCAN` calls and pipelines.
    public var scanCalls = 0
    public var commandsSent = 0

    public init() {}

    /// Keys that follow the layout.
    public var layoutKeys: Int { keysByType.values.reduce(0) { $0 + $1.total } }
}

/// The outcome of `RedisAuditor.audit()`: findings for the report plus the numbers behind them.
public struct RedisAuditResult: Sendable {
    public var findings: [Finding]
    public var summary: RedisAuditSummary

    public init(findings: [Finding], summary: RedisAuditSummary) {
        self.findings = findings
        self.summary = summary
    }
}

/// A count plus the first few examples, so a finding can name keys without holding millions of them.
struct Examples: Sendable {
    let limit: Int
    private(set) var count = 0
    private(set) var items: [String] = []

    init(limit: Int) { self.limit = limit }

    mutating func add(_ item: @autoclosure () -> String) {
        count += 1
        if items.count < limit { items.append(item()) }
    }

    /// `a, b, c and 7 more`.
    var listed: String {
        let more = count - items.count
        return items.joined(separator: ", ") + (more > 0 ? " and \(more) more" : "")
    }
}
