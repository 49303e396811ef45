import Findings
import RESP

/// Audits the exporter's keys in one Redis database and observes their expiry.
///
/// `audit()` streams through the keyspace with `SCAN MATCH {prefix}:* COUNT n` (never `KEYS`), pipelining
/// `TYPE` + `PTTL` for every key (and `HGETALL` for a sample) together with the next `SCAN`, so each batch costs
/// one round trip and memory stays bounded by the batch size plus `pairingMemory`.
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

    public init(connection: RedisConnection, options: RedisAuditOptions = RedisAuditOptions()) {
        self.connection = connection
        self.options = options
    }

    // MARK: - Audit

    /// Scans every key under the prefix once and checks type, TTL, layout, metric/meta pairing and a sample of
    /// hash contents. Runs on a dedicated thread (see `offThePool`); `onBatch` is called there.
    /// - Throws: `RedisError` when the server fails, vanishes or answers out of protocol; `CancellationError`.
    public func audit() async throws -> RedisAuditResult {
        try await offThePool { cancelled in try self.auditBlocking(cancelled: cancelled) }
    }

    /// One pipelined round trip: `TYPE` + `PTTL` (+ `HGETALL`) for a SCAN page, pending `EXISTS` checks, and
    /// the next `SCAN`.
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
        var sampled: [Bool] = []
        sampled.reserveCapacity(keys.count)
        for (key, layout) in zip(keys, parsed) {
            commands.append("TYPE", key: key)
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
        let hasScan = cursor != "0"
        if hasScan {
            appendScan(to: &commands, cursor: cursor)
            state.summary.scanCalls += 1
        }
        state.summary.commandsSent += commands.count
        return Batch(
            number: number, keys: keys, parsed: parsed, sampled: sampled, checks: checks, hasScan: hasScan, commands: commands)
    }

    private var prefixBytes: [UInt8] { Array(options.prefix.utf8) + [UInt8(ascii: ":")] }

    private func auditBlocking(cancelled: CancellationFlag) throws -> RedisAuditResult {
        let address = self.address
        var state = AuditState(options: options)
        var (cursor, keys) = try scan(cursor: "0", batchNumber: 0, state: &state)
        var current = makeBatch(number: 1, keys: keys, cursor: cursor, state: &state)
        try connection.send(current.commands, purpose: "SCAN batch 1")
        while true {
            let replies = try connection.receive(current.commands.count, purpose: "SCAN batch \(current.number)")
            // Send the next batch before judging this one, so the server works while kverify does.
            var next: Batch?
            if current.hasScan {
                (cursor, keys) = try parseScanReply(replies[replies.count - 1], address: address)
                let batch = makeBatch(number: current.number + 1, keys: keys, cursor: cursor, state: &state)
                try connection.send(batch.commands, purpose: "SCAN batch \(batch.number)")
                next = batch
            }
            var index = 0
            for position in current.keys.indices {
                let sampled = current.sampled[position]
                try state.record(
                    key: current.keys[position], layout: current.parsed[position], type: replies[index],
                    pttl: replies[index + 1], hash: sampled ? replies[index + 2] : nil, address: address)
                index += sampled ? 3 : 2
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

    private var address: String { connection.endpoint.description }

    private func appendScan(to batch: inout RESPCommandBuffer, cursor: String) {
        batch.append(["SCAN", cursor, "MATCH", options.matchPattern, "COUNT", String(options.scanCount)])
    }

    private func scan(cursor: String, batchNumber: Int, state: inout AuditState) throws -> (String, [[UInt8]]) {
        var batch = RESPCommandBuffer()
        appendScan(to: &batch, cursor: cursor)
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
        while true {
            let sampleStart = clock.now - start
            var round = try sampleRound(sampleStart: sampleStart)
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
    }

    /// One full pass: `SCAN` + `PTTL` for every key, streamed batch by batch.
    private func sampleRound(sampleStart: Duration) throws -> Round {
        var round = Round(
            sample: ExpiryTimeline.Sample(seconds: sampleStart.seconds, alive: 0), predictedEnd: nil,
            alive: Examples(limit: options.listLimit))
        var cursor = "0"
        var keys: [[UInt8]] = []
        var first = true
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
            } else {
                keys = []
            }
        } while !keys.isEmpty || cursor != "0"
        return round
    }
}

/// `SCAN` answers `[cursor, [key, …]]`.
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
