import Findings
import RESP

/// Audits the exporter's keys in one Redis database and observes their expiry.
///
/// `audit()` streams through the hashes with `SCAN MATCH {prefix}:* COUNT n TYPE hash` (never `KEYS`),
/// pipelining `PTTL` for every key (and `HGETALL` for a sample) together with the next `SCAN`, so each batch costs
/// one round trip and memory stays bounded by the batch size plus `pairingMemory`. Keys of other types are
/// looked for only when `DBSIZE` does not prove there are none (see `auditBlocking`).
///
/// `observeExpiry(deadline:)` re-scans with `PTTL` until every key is gone or the deadline passes, and returns
/// a timeline. Both can be called step by step from Swift; `findings` turn their results into report lines.
public final class RedisAuditor {
    public let connection: RedisConnection
    public let options: RedisAuditOptions
    /// Called after each scan batch of `audit()` with the number of keys scanned so far.
    public var onBatch: ((Int) -> Void)?
    /// Called after each sample of `observeExpiry(deadline:)`.
    public var onSample: ((ExpiryTimeline.Sample) -> Void)?

    /// The server's address for error messages, rendered once: it is passed along with every reply.
    private let address: String
    private let prefixBytes: [UInt8]

    public init(connection: RedisConnection, options: RedisAuditOptions = RedisAuditOptions()) {
        self.connection = connection
        self.options = options
        address = connection.endpoint.description
        prefixBytes = Array(options.prefix.utf8) + [UInt8(ascii: ":")]
    }

    // MARK: - Audit

    /// Scans every key under the prefix once and checks type, TTL, layout, metric/meta pairing and a sample of
    /// hash contents. Runs on a dedicated thread (see `offThePool`); `onBatch` is called there.
    /// - Throws: `RedisError` when the server fails, vanishes or answers out of protocol; `CancellationError`.
    public func audit() async throws -> RedisAuditResult {
        try await offThePool { cancelled in try self.auditBlocking(cancelled: cancelled) }
    }

    /// One pipelined round trip: the next `SCAN`, then `PTTL` (+ `HGETALL`) for a page of hash keys and pending
    /// `EXISTS` checks.
    private struct Batch {
        var number: Int
        var keys: [[UInt8]]
        var parsed: [Result<CompactKey, LayoutViolation>]
        var sampled: [Bool]
        var checks: [PairCheck]
        var hasScan: Bool
        var commands: RESPCommandBuffer
    }

    private func makeBatch(number: Int, keys: [[UInt8]], cursor: String, state: inout AuditState) -> Batch {
        let parsed = keys.map { CompactKey.parse($0, prefix: prefixBytes) }
        var commands = RESPCommandBuffer()
        // The next SCAN goes first: its reply lets the next batch be sent while the server is still answering
        // this one's PTTLs, so the server never waits for kverify between batches.
        let hasScan = cursor != "0"
        if hasScan {
            appendScan(to: &commands, cursor: cursor, type: "hash")
            state.summary.scanCalls += 1
        }
        var sampled: [Bool] = []
        sampled.reserveCapacity(keys.count)
        for (key, layout) in zip(keys, parsed) {
            commands.append("PTTL", key: key)
            let sample = state.wantsSample(layout)
            if sample { commands.append("HGETALL", key: key) }
            sampled.append(sample)
        }
        let checks = state.takeOverflowChecks()
        for check in checks {
            commands.append(["EXISTS", check.key])
            commands.append(["EXISTS", check.twin])
        }
        state.summary.commandsSent += commands.count
        return Batch(
            number: number, keys: keys, parsed: parsed, sampled: sampled, checks: checks, hasScan: hasScan, commands: commands)
    }

    /// The audit in up to two passes. The first streams through the hashes only (`SCAN … TYPE hash`: the server
    /// filters by type, so no `TYPE` per key) with `PTTL` pipelined per page. A key of another type is what the
    /// second pass looks for, and it runs only when the first cannot prove there is none: when `DBSIZE` before
    /// and after equals the number of distinct keys the first pass returned, every key of the database was a
    /// hash under the prefix. Otherwise (other keys in the database, or keys created or deleted meanwhile) the
    /// second pass scans every key under the prefix and asks `TYPE` per key, as the audit always did.
    private func auditBlocking(cancelled: CancellationFlag) throws -> RedisAuditResult {
        var state = AuditState(options: options)
        let keysBefore = try databaseSize()
        var distinct = DistinctCounter(expected: keysBefore ?? 0)
        try hashPass(state: &state, distinct: &distinct, cancelled: cancelled)
        let keysAfter = try databaseSize()
        let hashKeys = state.summary.keysScanned
        let proven = keysBefore != nil && keysBefore == keysAfter && keysAfter == hashKeys && !distinct.unproven
            && state.summary.keysVanished == 0
        state.summary.typesProvenByCount = proven
        if !proven { try otherTypesPass(state: &state, cancelled: cancelled) }
        // Keys whose twin never showed up in the scan (and twins still to check): ask the server, in bounded batches.
        var remaining = state.takeOverflowChecks() + state.drainPending()
        while !remaining.isEmpty {
            let chunk = remaining.suffix(options.scanCount)
            remaining.removeLast(chunk.count)
            var batch = RESPCommandBuffer()
            for check in chunk {
                batch.append(["EXISTS", check.key])
                batch.append(["EXISTS", check.twin])
            }
            state.summary.commandsSent += batch.count
            let replies = try connection.pipeline(batch, purpose: "EXISTS check of unpaired keys")
            for (offset, check) in chunk.enumerated() {
                try state.resolve(check, keyExists: replies[2 * offset], twinExists: replies[2 * offset + 1], address: address)
            }
        }
        state.finish()
        return RedisAuditResult(findings: state.findings(), summary: state.summary)
    }

    /// `DBSIZE`, or nil when the server refuses it (an ACL without it): the second pass then always runs.
    private func databaseSize() throws -> Int? {
        var batch = RESPCommandBuffer()
        batch.append(["DBSIZE"])
        let reply = try connection.pipeline(batch, purpose: "DBSIZE")[0]
        return reply.integer.map { Int($0) }
    }

    private func hashPass(state: inout AuditState, distinct: inout DistinctCounter, cancelled: CancellationFlag) throws {
        let hash = RESPValue.simpleString("hash")
        var (cursor, keys) = try scan(cursor: "0", type: "hash", batchNumber: 0, state: &state)
        var trail = CursorTrail(address: address)
        try trail.visit(cursor)
        var current = makeBatch(number: 1, keys: keys, cursor: cursor, state: &state)
        try connection.send(current.commands, purpose: "SCAN batch 1")
        while true {
            let purpose = "SCAN batch \(current.number)"
            // Send the next batch as soon as its SCAN reply is in, before reading and judging this one's replies.
            var next: Batch?
            if current.hasScan {
                (cursor, keys) = try parseScanReply(try connection.receive(1, purpose: purpose)[0], address: address)
                try trail.visit(cursor)
                let batch = makeBatch(number: current.number + 1, keys: keys, cursor: cursor, state: &state)
                try connection.send(batch.commands, purpose: "SCAN batch \(batch.number)")
                next = batch
            }
            let replies = try connection.receive(current.commands.count - (current.hasScan ? 1 : 0), purpose: purpose)
            var index = 0
            for position in current.keys.indices {
                let sampled = current.sampled[position]
                distinct.insert(current.keys[position])
                try state.record(
                    key: current.keys[position], layout: current.parsed[position], type: hash,
                    pttl: replies[index], hash: sampled ? replies[index + 1] : nil, address: address)
                index += sampled ? 2 : 1
            }
            for check in current.checks {
                try state.resolve(check, keyExists: replies[index], twinExists: replies[index + 1], address: address)
                index += 2
            }
            onBatch?(state.summary.keysScanned)
            try cancelled.check()
            guard let next else { break }
            current = next
        }
    }

    /// Every key under the prefix with `TYPE`; keys that are not hashes get a `PTTL` and are recorded (hashes
    /// were recorded by the first pass, or appeared after it).
    private func otherTypesPass(state: inout AuditState, cancelled: CancellationFlag) throws {
        var cursor = "0"
        var number = 0
        var trail = CursorTrail(address: address)
        repeat {
            number += 1
            let (next, keys) = try scan(cursor: cursor, type: nil, batchNumber: number, state: &state)
            cursor = next
            try trail.visit(cursor)
            guard !keys.isEmpty else { continue }
            var types = RESPCommandBuffer()
            for key in keys { types.append("TYPE", key: key) }
            state.summary.commandsSent += types.count
            let typeReplies = try connection.pipeline(types, purpose: "TYPE of SCAN batch \(number)")
            var others: [(key: [UInt8], type: RESPValue)] = []
            for (key, reply) in zip(keys, typeReplies) {
                guard let type = reply.string, reply.errorMessage == nil else {
                    throw commandFailure("TYPE", key: key, reply: reply, address: address)
                }
                if type != "hash" && type != "none" { others.append((key, reply)) }
            }
            if !others.isEmpty {
                var ttls = RESPCommandBuffer()
                for other in others { ttls.append("PTTL", key: other.key) }
                state.summary.commandsSent += ttls.count
                let ttlReplies = try connection.pipeline(ttls, purpose: "PTTL of SCAN batch \(number)")
                for (other, pttl) in zip(others, ttlReplies) {
                    try state.record(
                        key: other.key, layout: CompactKey.parse(other.key, prefix: prefixBytes), type: other.type,
                        pttl: pttl, hash: nil, address: address)
                }
            }
            onBatch?(state.summary.keysScanned)
            try cancelled.check()
        } while cursor != "0"
    }


    private func appendScan(to batch: inout RESPCommandBuffer, cursor: String, type: String? = nil) {
        var arguments = ["SCAN", cursor, "MATCH", options.matchPattern, "COUNT", String(options.scanCount)]
        if let type { arguments += ["TYPE", type] }
        batch.append(arguments)
    }

    private func scan(cursor: String, type: String? = nil, batchNumber: Int, state: inout AuditState) throws -> (String, [[UInt8]]) {
        var batch = RESPCommandBuffer()
        appendScan(to: &batch, cursor: cursor, type: type)
        state.summary.scanCalls += 1
        state.summary.commandsSent += 1
        let replies = try connection.pipeline(batch, purpose: "SCAN batch \(batchNumber)")
        return try parseScanReply(replies[0], address: address)
    }

    // MARK: - Expiry

    /// Samples the keyspace (`SCAN` + `PTTL`) until no key under the prefix is left or `deadline` passes.
    /// Sleeps between samples only until the next poll or the predicted expiry of the last key, whichever is
    /// sooner. Never throws for keys still alive at the deadline: that is a finding, see `ExpiryTimeline`.
    /// Runs on a dedicated thread (see `offThePool`) so a busy executor cannot stretch the measured times;
    /// `onSample` is called there.
    /// - Throws: `RedisError` when the server fails or vanishes; `CancellationError`.
    public func observeExpiry(deadline: ContinuousClock.Instant) async throws -> ExpiryTimeline {
        try await offThePool { cancelled in try self.observeBlocking(deadline: deadline, cancelled: cancelled) }
    }

    private func observeBlocking(deadline: ContinuousClock.Instant, cancelled: CancellationFlag) throws -> ExpiryTimeline {
        let clock = ContinuousClock()
        let start = clock.now
        var timeline = ExpiryTimeline(configuredTTLSeconds: options.ttlSeconds)
        let interval = options.effectivePollInterval
        var previousEnd: Duration?  // predicted time (since start) the last key expires, from the previous sample
        var previousStart: Duration?
        var previousDuration: Duration = .zero
        var writtenAtShutdown: [String: Bool] = [:]  // keys without TTL, classified once
        while true {
            let sampleStart = clock.now - start
            var round = try sampleRound(sampleStart: sampleStart, writtenAtShutdown: &writtenAtShutdown)
            let roundDuration = clock.now - start - sampleStart
            // A key nobody writes keeps the same predicted end (± how late in the previous round it was read);
            // a later prediction means a write refreshed or created a key.
            if let previousEnd, let end = round.predictedEnd, end > previousEnd + previousDuration + .milliseconds(20) {
                round.sample.refreshed = true
                timeline.lastWriteSeconds = sampleStart.seconds
                if let ttl = options.ttlSeconds, let maxTTL = round.sample.maxTTLMilliseconds, let previousStart {
                    // The write happened after the previous sample started; its TTL has run down at most since then.
                    let allowance = (clock.now - start - previousStart) + .milliseconds(250)
                    let shortfall = Duration.milliseconds(milliseconds(seconds: ttl) - maxTTL) - allowance
                    if shortfall > .zero {
                        timeline.refreshesBelowTTL += 1
                        timeline.lowestRefreshedTTLMilliseconds = min(timeline.lowestRefreshedTTLMilliseconds ?? maxTTL, maxTTL)
                    }
                }
            }
            if timeline.samples.isEmpty { timeline.keysAtStart = round.sample.alive }
            timeline.killedWriterKeys = round.killed.items
            timeline.killedWriterKeyCount = round.killed.count
            timeline.killedWriters = round.killedPids.sorted().compactMap { options.killedWriters[$0] }
            timeline.shutdownWriteKeys = round.shutdown.items
            timeline.shutdownWriteKeyCount = round.shutdown.count
            timeline.samples.append(round.sample)
            onSample?(round.sample)
            if round.sample.alive > 0 { timeline.lastKeySeenSeconds = sampleStart.seconds }
            if round.sample.alive == 0 {
                timeline.emptySeconds = sampleStart.seconds
                break
            }
            let now = clock.now
            if now >= deadline {
                timeline.stillAlive = round.alive.items
                timeline.stillAliveCount = round.alive.count
                timeline.deadlineSeconds = (now - start).seconds
                break
            }
            previousEnd = round.predictedEnd
            previousStart = sampleStart
            previousDuration = roundDuration
            var wake = start + sampleStart + interval
            if let end = round.predictedEnd { wake = min(wake, start + end + .milliseconds(20)) }
            wake = min(max(wake, clock.now), deadline)
            try cancelled.sleep(until: wake)
        }
        timeline.slackSeconds = options.effectiveSlack.seconds
        return timeline
    }

    private struct Round {
        var sample: ExpiryTimeline.Sample
        var predictedEnd: Duration?
        var alive: Examples
        var killed: Examples
        var killedPids: Set<Int> = []
        var shutdown: Examples
    }

    /// Whether a key without a TTL was written after `options.shutdownSince`, by its hash's `updated_at` (metric
    /// keys) or `created_at` (meta keys), both in Redis server time. A meta key without `created_at` (its writer
    /// died between its two `HSETNX`) is judged by its metric twin's `updated_at`.
    private func writtenAfterShutdown(_ key: [UInt8], since: Double) throws -> Bool {
        var names = [String(decoding: key, as: UTF8.self)]
        if case .success(let parsed) = ExporterKey.parse(key, prefix: options.prefix), parsed.kind == .meta {
            names.append(parsed.twinKey(prefix: options.prefix))
        }
        var batch = RESPCommandBuffer()
        for name in names { batch.append(["HMGET", name, "updated_at", "created_at"]) }
        let replies = try connection.pipeline(batch, purpose: "expiry sample HMGET")
        let stamps = replies.map { reply -> Double? in
            guard case .array(let fields) = reply else { return nil }
            return fields.compactMap { $0.string.flatMap(Double.init) }.max()
        }
        guard let written = stamps.first.flatMap({ $0 }) ?? stamps.dropFirst().first.flatMap({ $0 }) else { return false }
        return written >= since
    }

    /// One full pass: `SCAN` + `PTTL` for every key, streamed batch by batch.
    private func sampleRound(sampleStart: Duration, writtenAtShutdown: inout [String: Bool]) throws -> Round {
        var round = Round(
            sample: ExpiryTimeline.Sample(seconds: sampleStart.seconds, alive: 0), predictedEnd: nil,
            alive: Examples(limit: options.listLimit), killed: Examples(limit: options.listLimit), shutdown: Examples(limit: options.listLimit))
        var cursor = "0"
        var keys: [[UInt8]] = []
        var first = true
        var trail = CursorTrail(address: address)
        repeat {
            var batch = RESPCommandBuffer()
            for key in keys { batch.append("PTTL", key: key) }
            let more = first || cursor != "0"
            if more { appendScan(to: &batch, cursor: cursor) }
            first = false
            let replies = try connection.pipeline(batch, purpose: "expiry sample SCAN")
            for (key, reply) in zip(keys, replies) {
                guard let pttl = reply.integer else {
                    throw commandFailure("PTTL", key: key, reply: reply, address: address)
                }
                guard pttl != -2 else { continue }
                // A killed writer's key without a TTL never expires; it is reported, not waited for.
                if pttl == -1, !options.killedWriters.isEmpty, case .success(let parsed) = ExporterKey.parse(key, prefix: options.prefix),
                   options.killedWriters[parsed.pid] != nil {
                    round.killed.add(String(decoding: key, as: UTF8.self))
                    round.killedPids.insert(parsed.pid)
                    continue
                }
                if pttl == -1, let since = options.shutdownSince {
                    let name = String(decoding: key, as: UTF8.self)
                    let atShutdown = try writtenAtShutdown[name] ?? writtenAfterShutdown(key, since: since)
                    writtenAtShutdown[name] = atShutdown
                    if atShutdown {
                        round.shutdown.add(name)
                        continue
                    }
                }
                round.sample.alive += 1
                round.alive.add(String(decoding: key, as: UTF8.self) + (pttl == -1 ? " (no TTL)" : " (TTL \(formatMilliseconds(pttl)))"))
                guard pttl >= 0 else {
                    round.sample.withoutTTL += 1
                    continue
                }
                round.sample.minTTLMilliseconds = min(round.sample.minTTLMilliseconds ?? pttl, pttl)
                round.sample.maxTTLMilliseconds = max(round.sample.maxTTLMilliseconds ?? pttl, pttl)
                let end = sampleStart + .milliseconds(pttl)
                round.predictedEnd = max(round.predictedEnd ?? end, end)
            }
            if more {
                (cursor, keys) = try parseScanReply(replies[replies.count - 1], address: address)
                try trail.visit(cursor)
            } else {
                keys = []
            }
        } while !keys.isEmpty || cursor != "0"
        return round
    }
}

/// Tells whether a key name was returned before, to prove the first pass saw distinct keys (SCAN repeats keys
/// when Redis resizes its table mid-scan). Holds a 64-bit hash per key in an open-addressing table of at most
/// `maximumSlots` (16 MiB): an answer can err only towards "repeat" (two names with one hash) or "unknown" (more
/// keys than fit), and either just makes the audit run its second pass.
struct DistinctCounter {
    static let maximumSlots = 1 << 21
    private var slots: [UInt64]
    private var count = 0
    /// A key hashed like one already present, or the table was full: distinctness is not proven.
    private(set) var unproven = false

    init(expected: Int) {
        var size = 1024
        while size < 2 * expected && size < Self.maximumSlots { size *= 2 }
        slots = [UInt64](repeating: 0, count: size)
    }

    mutating func insert(_ key: [UInt8]) {
        guard !unproven else { return }
        if 2 * (count + 1) > slots.count {
            guard slots.count < Self.maximumSlots else {
                unproven = true
                slots = []
                return
            }
            grow()
        }
        let hash = key.withUnsafeBufferPointer { Self.hash($0) }
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index] != 0 {
            if slots[index] == hash {
                unproven = true
                return
            }
            index = (index + 1) & mask
        }
        slots[index] = hash
        count += 1
    }

    private mutating func grow() {
        let old = slots
        slots = [UInt64](repeating: 0, count: old.count * 2)
        let mask = slots.count - 1
        for hash in old where hash != 0 {
            var index = Int(truncatingIfNeeded: hash) & mask
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = hash
        }
    }

    /// A word-at-a-time multiply-xorshift hash, never 0 (0 marks an empty slot).
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: bytes.count)
        let raw = UnsafeRawBufferPointer(bytes)
        var index = 0
        while index + 8 <= bytes.count {
            hash = (hash ^ raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            hash ^= hash >> 32
            index += 8
        }
        var tail: UInt64 = 0
        while index < bytes.count {
            tail = tail << 8 | UInt64(bytes[index])
            index += 1
        }
        hash = (hash ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        hash ^= hash >> 29
        hash = hash &* 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 32
        return hash == 0 ? 1 : hash
    }
}

/// `SCAN` answers `[cursor, [key, …]]`.
/// The cursors one SCAN iteration has returned. A real server's cursors never repeat within an iteration (they
/// advance in reversed-bit order, rehashing included), so a repeat is a server that would keep kverify scanning
/// forever: it is a protocol violation, not something to wait out.
struct CursorTrail {
    let address: String
    private var seen: Set<String> = []

    init(address: String) { self.address = address }

    mutating func visit(_ cursor: String) throws {
        guard cursor != "0" else { return }
        guard seen.insert(cursor).inserted else {
            throw RedisError(.protocolViolation, address: address,
                             "SCAN returned cursor \(cursor) a second time in one iteration (after \(seen.count) cursors): the scan would never end")
        }
    }
}

func parseScanReply(_ reply: RESPValue, address: String) throws -> (String, [[UInt8]]) {
    if let message = reply.errorMessage {
        throw commandFailure("SCAN", key: nil, reply: .error(message), address: address)
    }
    guard let parts = reply.array, parts.count == 2, let cursor = parts[0].string,
        !cursor.isEmpty, cursor.allSatisfy(\.isNumber), let list = parts[1].array
    else {
        throw RedisError(.protocolViolation, address: address, "SCAN: expected [cursor, [keys…]], saw \(reply.summary)")
    }
    var keys: [[UInt8]] = []
    keys.reserveCapacity(list.count)
    for element in list {
        guard case .bulkString(let bytes) = element else {
            throw RedisError(.protocolViolation, address: address, "SCAN: expected key names as bulk strings, saw \(element.summary)")
        }
        keys.append(bytes)
    }
    return (cursor, keys)
}

/// A command answered with an error (or an unexpected shape) in the middle of the audit.
func commandFailure(_ command: String, key: [UInt8]?, reply: RESPValue, address: String) -> RedisError {
    let subject = key.map { " \(String(decoding: $0, as: UTF8.self))" } ?? ""
    guard let message = reply.errorMessage else {
        return RedisError(.protocolViolation, address: address, "\(command)\(subject): unexpected reply \(reply.summary)")
    }
    let code = message.prefix { $0 != " " }
    let kind: RedisError.Kind = ["NOAUTH", "WRONGPASS", "NOPERM"].contains(code) ? .authentication : .server
    return RedisError(kind, address: address, "\(command)\(subject) failed: \(message)")
}

func formatMilliseconds(_ milliseconds: Int64) -> String {
    let seconds = Double(milliseconds) / 1000
    return seconds.formatted(decimals: 3) + " s"
}

extension Double {
    /// Fixed-point text without Foundation.
    func formatted(decimals: Int) -> String {
        guard isFinite else { return String(self) }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(self) * scale).rounded()
        let whole = Int64(scaled / scale)
        var fraction = String(Int64(scaled) - whole * Int64(scale))
        while fraction.count < decimals { fraction = "0" + fraction }
        return (self < 0 && scaled != 0 ? "-" : "") + String(whole) + (decimals > 0 ? "." + fraction : "")
    }
}
