import Findings
import RESP

/// A key whose twin has not been seen in the scan; resolved with `EXISTS key` + `EXISTS twin`.
struct PairCheck: Sendable {
    var key: String
    var twin: String
    var kind: ExporterKey.Kind
}

/// Everything the audit accumulates while streaming through the keyspace: counters, bounded example lists and
/// the keys still waiting for their twin. Pure: replies in, findings out.
struct AuditState {
    let options: RedisAuditOptions
    var summary = RedisAuditSummary()
    private var pids: Set<Int> = []
    private static let pidLimit = 10_000

    private var withoutTTL: Examples
    private var killedWithoutTTL: Examples
    private var killedPids: Set<Int> = []
    private var aboveTTL: Examples
    private var unexpected: Examples
    private var nonHash: Examples
    private var metricWithoutMeta: Examples
    private var metaWithoutMetric: Examples
    private var missingFields: Examples
    /// Hashes read with `HGETALL` so far: metric, meta.
    private var sampledMetric = 0
    private var sampledMeta = 0
    /// The pid of the previous key inserted into `pids`: a repeat of it skips hashing into the set.
    private var lastPid = 0

    /// Keys per type, indexed like `ExporterKey.typeNames` (copied into `summary.keysByType` by `findings`).
    private var typeCounts = [RedisAuditSummary.KindCounts](repeating: .init(), count: ExporterKey.typeNames.count)
    /// Keys seen without their twin yet.
    private var pending: [CompactKey.PairID: ExporterKey.Kind] = [:]
    /// Keys that arrived while `pending` was full: their twins are checked with the next pipeline.
    private var overflow: [PairCheck] = []

    init(options: RedisAuditOptions) {
        self.options = options
        let limit = options.listLimit
        withoutTTL = Examples(limit: limit)
        killedWithoutTTL = Examples(limit: limit)
        aboveTTL = Examples(limit: limit)
        unexpected = Examples(limit: limit)
        nonHash = Examples(limit: limit)
        metricWithoutMeta = Examples(limit: limit)
        metaWithoutMetric = Examples(limit: limit)
        missingFields = Examples(limit: limit)
    }

    /// Whether to read this key in full with `HGETALL` (the first `sampleSize` keys of each kind).
    mutating func wantsSample(_ layout: Result<CompactKey, LayoutViolation>) -> Bool {
        guard case .success(let key) = layout else { return false }
        switch key.kind {
        case .metric:
            guard sampledMetric < options.sampleSize else { return false }
            sampledMetric += 1
        case .meta:
            guard sampledMeta < options.sampleSize else { return false }
            sampledMeta += 1
        }
        return true
    }

    mutating func takeOverflowChecks() -> [PairCheck] {
        defer { overflow.removeAll(keepingCapacity: true) }
        return overflow
    }

    /// Keys still unpaired at the end of the scan.
    mutating func drainPending() -> [PairCheck] {
        defer { pending.removeAll() }
        return pending.map { pair, kind in check(for: CompactKey(pair: pair, kind: kind)) }
    }

    private func check(for key: CompactKey) -> PairCheck {
        let expanded = key.expanded
        return PairCheck(key: expanded.key(prefix: options.prefix), twin: expanded.twinKey(prefix: options.prefix), kind: key.kind)
    }

    // MARK: - One key

    mutating func record(
        key: [UInt8], layout: Result<CompactKey, LayoutViolation>, type typeReply: RESPValue, pttl pttlReply: RESPValue,
        hash hashReply: RESPValue?, address: String
    ) throws {
        summary.keysScanned += 1
        guard let type = typeReply.string, typeReply.errorMessage == nil else {
            throw commandFailure("TYPE", key: key, reply: typeReply, address: address)
        }
        guard let pttl = pttlReply.integer else {
            throw commandFailure("PTTL", key: key, reply: pttlReply, address: address)
        }
        // Expired between SCAN and TYPE/PTTL: the TTL did its job.
        if type == "none" || pttl == -2 {
            summary.keysVanished += 1
            return
        }
        // Only failures and samples need the key as text.
        var name: String { String(decoding: key, as: UTF8.self) }
        if pttl < 0, !options.killedWriters.isEmpty, case .success(let parsed) = layout, options.killedWriters[parsed.pair.pid] != nil {
            summary.keysWithoutTTLOfKilledWriters += 1
            killedWithoutTTL.add(name)
            killedPids.insert(parsed.pair.pid)
        } else {
            recordTTL(name: name, pttl: pttl)
        }

        let parsed: CompactKey
        switch layout {
        case .failure(let violation):
            summary.unexpectedKeys += 1
            unexpected.add("\(name) (\(violation), type \(type))")
            return
        case .success(let key):
            parsed = key
        }
        guard type == "hash" else {
            summary.nonHashKeys += 1
            nonHash.add("\(name) (\(type))")
            return
        }
        typeCounts[Int(parsed.pair.typeIndex)].add(parsed.kind)
        if parsed.pair.pid != lastPid && pids.count < Self.pidLimit {
            pids.insert(parsed.pair.pid)
            lastPid = parsed.pair.pid
        }
        // An interrupted writer's keys may lack their twin (it stopped between the two writes): not judged as pairs, counted.
        if options.killedWriters.isEmpty || options.killedWriters[parsed.pair.pid] == nil {
            pair(parsed)
        } else {
            summary.keysOfKilledWritersNotPaired += 1
        }
        if let hashReply { checkFields(name: name, key: parsed, reply: hashReply) }
    }

    private mutating func recordTTL(name: @autoclosure () -> String, pttl: Int64) {
        guard pttl >= 0 else {
            summary.keysWithoutTTL += 1
            withoutTTL.add(name())
            return
        }
        summary.minTTLMilliseconds = min(summary.minTTLMilliseconds ?? pttl, pttl)
        summary.maxTTLMilliseconds = max(summary.maxTTLMilliseconds ?? pttl, pttl)
        guard let ttl = options.ttlSeconds, ttl > 0 else { return }
        let configured = milliseconds(seconds: ttl)
        if pttl > configured {
            summary.keysAboveTTL += 1
            aboveTTL.add("\(name()) (\(formatMilliseconds(pttl)))")
        }
        // A TTL too large to multiply by 4 in an Int64 (Redis allows PTTLs up to Int64.max) is placed in floating
        // point instead; exact integer division otherwise.
        let (quadruple, overflow) = pttl.multipliedReportingOverflow(by: 4)
        let quarter = overflow ? Int(min(3, 4 * (Double(pttl) / Double(configured)))) : min(3, Int(quadruple / configured))
        summary.ttlQuartiles[quarter] += 1
    }

    /// Matches a key with its twin in memory; when memory is full, the twin is checked on the server instead.
    private mutating func pair(_ key: CompactKey) {
        if let waiting = pending[key.pair] {
            // The same key twice is a SCAN duplicate (Redis rehashed mid-scan), not a pair.
            if waiting != key.kind { pending[key.pair] = nil }
            return
        }
        if pending.count < options.pairingMemory {
            pending[key.pair] = key.kind
        } else {
            overflow.append(check(for: key))
        }
    }

    /// Settles an unpaired key from `EXISTS key` and `EXISTS twin`.
    mutating func resolve(_ check: PairCheck, keyExists: RESPValue, twinExists: RESPValue, address: String) throws {
        guard let keyCount = keyExists.integer else {
            throw commandFailure("EXISTS", key: Array(check.key.utf8), reply: keyExists, address: address)
        }
        guard let twinCount = twinExists.integer else {
            throw commandFailure("EXISTS", key: Array(check.twin.utf8), reply: twinExists, address: address)
        }
        // A key that has expired meanwhile took its pairing question with it.
        guard keyCount > 0, twinCount == 0 else { return }
        switch check.kind {
        case .metric:
            summary.metricKeysWithoutMeta += 1
            metricWithoutMeta.add("\(check.key) (no \(check.twin))")
        case .meta:
            summary.metaKeysWithoutMetric += 1
            metaWithoutMetric.add("\(check.key) (no \(check.twin))")
        }
    }

    private mutating func checkFields(name: String, key: CompactKey, reply: RESPValue) {
        var fields: [String: String] = [:]
        switch reply {
        case .array(let flat) where flat.count % 2 == 1:
            // Field/value pairs cannot be odd: a broken server or proxy. Counted, not skipped, so the check stays.
            summary.sampledHashes += 1
            summary.hashesWithMissingFields += 1
            missingFields.add("\(name) (HGETALL answered \(flat.count) elements, not field/value pairs)")
            return
        case .array(let flat):
            for index in stride(from: 0, to: flat.count, by: 2) {
                if let field = flat[index].string { fields[field] = flat[index + 1].string ?? "" }
            }
        case .map(let pairs):
            for pair in pairs { if let field = pair.key.string { fields[field] = pair.value.string ?? "" } }
        default:
            return  // WRONGTYPE is reported as a non-hash key; anything else has no fields to judge
        }
        guard !fields.isEmpty else { return }  // expired between TYPE and HGETALL
        summary.sampledHashes += 1
        var problems: [String] = []
        switch key.kind {
        case .metric:
            for field in ["value", "timestamp"] where fields[field] == nil { problems.append("missing \(field)") }
            for field in ["value", "timestamp"] {
                if let text = fields[field], Double(text) == nil { problems.append("\(field) \(text.debugDescription) is not a number") }
            }
        case .meta:
            if fields["original_key"] == nil { problems.append("missing original_key") }
        }
        if !problems.isEmpty {
            summary.hashesWithMissingFields += 1
            missingFields.add("\(name) (\(problems.joined(separator: ", ")))")
        }
    }

    // MARK: - Findings

    /// Copies the per-type counts into the summary; call once the scan is done, before `findings`.
    mutating func finish() {
        summary.processes = pids.count
        summary.keysByType = [:]
        for (index, counts) in typeCounts.enumerated() where counts.total > 0 {
            summary.keysByType[ExporterKey.typeNames[index]] = counts
        }
    }

    func findings() -> [Finding] {
        let pattern = "\(options.prefix):*"
        var findings: [Finding] = []

        // Presence per type family.
        if summary.layoutKeys == 0 {
            findings.append(.fail(
                "redis.keys.present-per-type", subject: pattern,
                expected: "exporter keys (counter, histogram, gauge_*) under \(pattern)",
                observed: "no exporter keys" + (summary.unexpectedKeys > 0 ? " (\(summary.unexpectedKeys) keys of another layout)" : ""),
                detail: "the exporter has written nothing here, every key expired (no traffic within the TTL), "
                    + "or --prefix/--db do not match REDIS_KEY_PREFIX/REDIS_DB"))
        } else {
            for family in ["counter", "histogram", "gauge"] {
                let types = summary.keysByType.filter { ExporterKey(type: $0.key, pid: 1, kind: .meta, hash: "").family == family }
                let metric = types.values.reduce(0) { $0 + $1.metric }
                let meta = types.values.reduce(0) { $0 + $1.meta }
                let subject = "\(options.prefix):\(family == "gauge" ? "gauge_*" : family):*"
                if metric > 0 {
                    let names = types.keys.sorted().joined(separator: ", ")
                    findings.append(.pass(
                        "redis.keys.present-per-type", subject: subject, expected: "at least one \(family) metric key",
                        observed: "\(metric) metric + \(meta) meta keys (\(names))"))
                } else {
                    findings.append(.fail(
                        "redis.keys.present-per-type", subject: subject, expected: "at least one \(family) metric key",
                        observed: "none", detail: "workers write \(family) metrics on every request; was there traffic within the TTL?"))
                }
            }
        }

        // TTL.
        let withTTL = summary.layoutKeys + summary.nonHashKeys + summary.unexpectedKeys - summary.keysWithoutTTL - summary.keysWithoutTTLOfKilledWriters
        if summary.keysWithoutTTL > 0 {
            findings.append(.fail(
                "redis.ttl.missing", subject: pattern, expected: "every key to have a TTL",
                observed: "\(summary.keysWithoutTTL) key\(plural(summary.keysWithoutTTL)) \(summary.keysWithoutTTL == 1 ? "has" : "have") no TTL (PTTL -1): \(withoutTTL.listed)",
                detail: "expiry is the exporter's only cleanup, so these keys live forever; is REDIS_TTL_DISABLED=true?"))
        } else if summary.keysScanned > summary.keysVanished + summary.keysWithoutTTLOfKilledWriters {
            findings.append(.pass("redis.ttl.missing", subject: pattern, expected: "every key to have a TTL", observed: "all \(withTTL) keys have one"))
        }
        if summary.keysWithoutTTLOfKilledWriters > 0 {
            let count = summary.keysWithoutTTLOfKilledWriters
            findings.append(.warn(
                AuditCheck.ttlKilledWriter, subject: pattern, expected: "every key to have a TTL",
                observed: "\(count) key\(plural(count)) without a TTL (PTTL -1) written by an interrupted writer: \(killedWithoutTTL.listed)",
                detail: killedPids.sorted().compactMap { options.killedWriters[$0] }.joined(separator: "; ")
                    + ". It stopped between a write and its EXPIRE, so these keys never expire: delete them (redis-cli DEL)"))
        }
        if let ttl = options.ttlSeconds, ttl > 0 {
            if summary.keysAboveTTL > 0 {
                findings.append(.fail(
                    "redis.ttl.above-configured", subject: pattern, expected: "TTL ≤ \(ttl) s (REDIS_TTL_SECONDS)",
                    observed: "\(summary.keysAboveTTL) key\(plural(summary.keysAboveTTL)) above: \(aboveTTL.listed)",
                    detail: "the exporter sets exactly REDIS_TTL_SECONDS; a longer TTL means another writer or another setting"))
            } else if withTTL > 0 {
                findings.append(.pass("redis.ttl.above-configured", subject: pattern, expected: "TTL ≤ \(ttl) s", observed: "none above"))
            }
        }
        if let low = summary.minTTLMilliseconds, let high = summary.maxTTLMilliseconds {
            var observed = "min \(formatMilliseconds(low)), max \(formatMilliseconds(high)) over \(withTTL) keys"
            if options.ttlSeconds != nil {
                let q = summary.ttlQuartiles
                observed += "; by remaining fraction of TTL 0–25 %: \(q[0]), 25–50 %: \(q[1]), 50–75 %: \(q[2]), 75–100 %: \(q[3])"
            }
            findings.append(.pass("redis.ttl.distribution", subject: pattern, observed: observed))
        }

        // Layout, types, pairing, contents.
        if summary.unexpectedKeys > 0 {
            findings.append(.warn(
                "redis.layout.unexpected-key", subject: pattern,
                expected: "{prefix}:{type}:{pid}:{metric|meta}:{md5}",
                observed: "\(summary.unexpectedKeys) key\(plural(summary.unexpectedKeys)) of another shape: \(unexpected.listed)",
                detail: "another writer shares the prefix; the exporter ignores these keys"))
        }
        if summary.nonHashKeys > 0 {
            findings.append(.fail(
                "redis.key.not-hash", subject: pattern, expected: "exporter keys to be hashes",
                observed: "\(summary.nonHashKeys) key\(plural(summary.nonHashKeys)) of another type: \(nonHash.listed)",
                detail: "the exporter's HGET/HSET on these keys fail with WRONGTYPE"))
        }
        if summary.metricKeysWithoutMeta > 0 || summary.metaKeysWithoutMetric > 0 {
            var parts: [String] = []
            if summary.metricKeysWithoutMeta > 0 {
                parts.append("\(summary.metricKeysWithoutMeta) metric key\(plural(summary.metricKeysWithoutMeta)) without meta: \(metricWithoutMeta.listed)")
            }
            if summary.metaKeysWithoutMetric > 0 {
                parts.append("\(summary.metaKeysWithoutMetric) meta key\(plural(summary.metaKeysWithoutMetric)) without metric: \(metaWithoutMetric.listed)")
            }
            let unchecked = summary.keysOfKilledWritersNotPaired
            if unchecked > 0 { parts.append("\(unchecked) key\(plural(unchecked)) of interrupted writers not checked") }
            let finding = Finding(
                checkID: "redis.meta.unpaired", subject: pattern,
                status: summary.metricKeysWithoutMeta > 0 ? .fail : .warn,
                expected: "every :metric: key to have its :meta: twin",
                observed: parts.joined(separator: "; "),
                detail: summary.metricKeysWithoutMeta > 0
                    ? "the collector skips a metric without meta: those series vanish from /metrics"
                    : "orphaned meta keys are harmless and expire with their TTL")
            findings.append(finding)
        } else if summary.layoutKeys > 0 {
            let unchecked = summary.keysOfKilledWritersNotPaired
            findings.append(.pass("redis.meta.unpaired", subject: pattern, expected: "metric/meta pairs",
                                  observed: "all keys paired" + (unchecked > 0 ? " (\(unchecked) key\(plural(unchecked)) of interrupted writers not checked)" : "")))
        }
        if summary.hashesWithMissingFields > 0 {
            findings.append(.fail(
                AuditCheck.hashMissingField, subject: pattern,
                expected: "metric hashes with numeric value and timestamp, meta hashes with original_key",
                observed: "\(summary.hashesWithMissingFields) of \(summary.sampledHashes) sampled hashes: \(missingFields.listed)"))
        } else if summary.sampledHashes > 0 {
            findings.append(.pass(
                AuditCheck.hashMissingField, subject: pattern, expected: "complete metric and meta hashes",
                observed: "\(summary.sampledHashes) sampled hashes complete"))
        }
        return findings
    }
}

extension RedisAuditSummary.KindCounts {
    mutating func add(_ kind: ExporterKey.Kind) {
        switch kind {
        case .metric: metric += 1
        case .meta: meta += 1
        }
    }
}

func plural(_ count: Int) -> String { count == 1 ? "" : "s" }
