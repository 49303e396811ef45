import Foundation
import Synchronization

/// The deadline that bounds retries of transient API errors (429, 5xx, dropped connections): a phase with a
/// deadline of its own (the rollout wait) sets it, so a call never sleeps for a retry past the phase's end.
public enum RetryDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// Runs `body` with retries bounded by `deadline` (or by an enclosing, earlier one).
    public static func with<T>(_ deadline: ContinuousClock.Instant, _ body: () async throws -> T) async rethrows -> T {
        try await $current.withValue(min(deadline, current ?? deadline)) { try await body() }
    }
}

/// How many transient API errors a client retried, by what it met ("HTTP 500", "HTTP 429", "connection reset"),
/// so a run's report can say that it succeeded only thanks to retries.
public final class RetryLedger: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    public init() {}

    func record(_ cause: String) { counts.withLock { $0[cause, default: 0] += 1 } }

    /// Every cause and its count.
    public var snapshot: [String: Int] { counts.withLock { $0 } }

    public var total: Int { snapshot.values.reduce(0, +) }

    /// `7 retries: 4× HTTP 500, 2× HTTP 429, 1× connection reset` (most frequent first); nil when none.
    public var summary: String? {
        let counts = snapshot
        guard !counts.isEmpty else { return nil }
        let parts = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.value)× \($0.key)" }
        let total = counts.values.reduce(0, +)
        return "\(total) \(total == 1 ? "retry" : "retries"): " + parts.joined(separator: ", ")
    }
}
