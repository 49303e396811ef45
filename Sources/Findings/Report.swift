import Foundation

/// Everything one kverify run found, plus how long each of its phases took.
public struct Report: Sendable, Codable {
    public struct Phase: Sendable, Codable, Hashable {
        public var name: String
        public var seconds: Double
        public init(name: String, seconds: Double) {
            self.name = name
            self.seconds = seconds
        }
    }

    /// What was verified, e.g. `metrics http://127.0.0.1:9091/metrics` or `redis 127.0.0.1:6379`.
    public var target: String
    public var findings: [Finding]
    public var phases: [Phase]

    public init(target: String, findings: [Finding] = [], phases: [Phase] = []) {
        self.target = target
        self.findings = findings
        self.phases = phases
    }

    /// The worst status among the findings; an empty report passes.
    public var verdict: Finding.Status { findings.map(\.status).max() ?? .pass }

    public var exitStatus: ExitStatus { verdict == .fail ? .checkFailed : .verified }

    public func count(_ status: Finding.Status) -> Int { findings.count { $0.status == status } }

    /// Runs `body` and records its duration as a phase named `name`.
    public mutating func timed<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { phases.append(Phase(name: name, seconds: (ContinuousClock.now - start).seconds)) }
        return try await body()
    }

    private enum CodingKeys: String, CodingKey { case target, verdict, summary, findings, phases }

    struct Summary: Codable { var pass: Int; var warn: Int; var fail: Int }

    var summary: Summary { Summary(pass: count(.pass), warn: count(.warn), fail: count(.fail)) }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(target, forKey: .target)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(summary, forKey: .summary)
        try container.encode(findings, forKey: .findings)
        try container.encode(phases, forKey: .phases)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        target = try container.decode(String.self, forKey: .target)
        findings = try container.decode([Finding].self, forKey: .findings)
        phases = try container.decode([Phase].self, forKey: .phases)
    }
}

extension Duration {
    /// The duration as fractional seconds.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

/// The verdict and the findings that are not passes first, so that a truncated log (a CI excerpt of a failed test)
/// still shows why; the passes follow, counted.
extension Report: CustomStringConvertible {
    public var description: String {
        let notPassed = findings.filter { $0.status != .pass }
        var lines = ["\(target): \(verdict.rawValue), \(count(.fail)) fail, \(count(.warn)) warn, \(count(.pass)) pass"]
        lines += notPassed.map { "  \($0)" }
        lines += findings.filter { $0.status == .pass }.map { "  \($0)" }
        return lines.joined(separator: "\n")
    }
}
