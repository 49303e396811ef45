/// What the audit expects and how hard it looks.
public struct RedisAuditOptions: Sendable {
    /// `REDIS_KEY_PREFIX` of the exporter (a trailing `:` is ignored, as the exporter does).
    public var prefix: String
    /// `REDIS_TTL_SECONDS` of the exporter; nil skips the "TTL above configured" check.
    public var ttlSeconds: Int?
    /// `COUNT` hint per `SCAN` call; also the pipeline batch size.
    public var scanCount: Int
    /// How many `metric` and how many `meta` hashes to read in full with `HGETALL`.
    public var sampleSize: Int
    /// How many key names a finding lists before "and N more".
    public var listLimit: Int
    /// Most keys held in memory while waiting for their metric/meta twin to appear in the scan; beyond it, twins
    /// are checked with `EXISTS`, so memory stays bounded on any keyspace.
    public var pairingMemory: Int
    /// Time between two samples of the expiry observation; nil picks TTL/20 clamped to 100 ms…1 s.
    public var pollInterval: Duration?
    /// How long after TTL a key may outlive the last write; nil picks max(1 s, 2 × poll interval).
    public var expirySlack: Duration?
    /// Writers (by the pid in their keys) known to have been killed in the middle of a write, with why. Such a
    /// writer may leave a key without a TTL (the exporter sends `HSET` and `EXPIRE` separately); those keys are
    /// reported as the killed writer's (`redis.ttl.killed-writer`, a warning), not as the exporter's TTL handling
    /// failing, and the expiry observation does not wait for them.
    public var killedWriters: [Int: String]
    /// Redis server time (`TIME`, in seconds) at which the writers were told to stop, for an expiry observation: a
    /// key without a TTL whose hash says it was written after that (`updated_at`, `created_at`) was written while
    /// the app shut down, and is reported as such (`redis.expiry.shutdown-write`, a warning) instead of being waited
    /// for. Seen with the real exporter: its master records signal metrics (`reason="chld"` as its workers exit)
    /// from a daemon thread the interpreter kills at exit, so a write can lose its `EXPIRE`.
    public var shutdownSince: Double?

    public init(
        prefix: String = "gunicorn",
        ttlSeconds: Int? = 300,
        scanCount: Int = 1000,
        sampleSize: Int = 50,
        listLimit: Int = 10,
        pairingMemory: Int = 200_000,
        pollInterval: Duration? = nil,
        expirySlack: Duration? = nil,
        killedWriters: [Int: String] = [:],
        shutdownSince: Double? = nil
    ) {
        var prefix = prefix
        while prefix.hasSuffix(":") { prefix.removeLast() }
        self.prefix = prefix
        self.ttlSeconds = ttlSeconds
        self.scanCount = max(1, scanCount)
        self.sampleSize = max(0, sampleSize)
        self.listLimit = max(1, listLimit)
        self.pairingMemory = max(0, pairingMemory)
        self.pollInterval = pollInterval
        self.expirySlack = expirySlack
        self.killedWriters = killedWriters
        self.shutdownSince = shutdownSince
    }

    /// The `SCAN MATCH` pattern: the prefix with glob characters escaped, then `:*`.
    public var matchPattern: String {
        var escaped = ""
        for character in prefix {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped + ":*"
    }

    var effectivePollInterval: Duration {
        if let pollInterval { return pollInterval }
        guard let ttlSeconds else { return .milliseconds(500) }
        let twentieth = Duration.milliseconds(milliseconds(seconds: ttlSeconds) / 20)
        return min(max(twentieth, .milliseconds(100)), .seconds(1))
    }

    var effectiveSlack: Duration {
        expirySlack ?? max(.seconds(1), effectivePollInterval * 2)
    }
}

/// `seconds` in milliseconds, saturating at `Int64.max`: `--ttl` accepts any positive Int, and a TTL that does
/// not fit is longer than any a key can hold, which is what the comparisons need.
func milliseconds(seconds: Int) -> Int64 {
    let (product, overflow) = Int64(seconds).multipliedReportingOverflow(by: 1000)
    return overflow ? (seconds < 0 ? .min : .max) : product
}
