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

/// Retry behaviour for one call: the one policy for transient errors of non-watch requests, through either backend
/// (watches restart in `retryingWatch`). A retry happens only while it fits in the call's budget (`maxElapsed` from
/// its start) and before the enclosing `RetryDeadline`; every retry is counted in the backend's `retries`.
public struct RetryPolicy: Sendable {
    /// Attempts in total, the first included; `maxElapsed` bounds the time they take. Enough that an API server
    /// failing almost half its requests (the sim's fault mix) does not fail a run of a thousand calls: 0.45^20 ≈
    /// 1.2 × 10⁻⁷ per call. With 12 (0.45^12 ≈ 7 × 10⁻⁵) one run in four of the fault-mix test failed a call.
    public var maxAttempts: Int = 20
    public var backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
    /// A `Retry-After` longer than this is not waited for: the call fails with `.tooManyRequests` at once.
    public var maxRetryAfter: Duration = .seconds(30)
    /// No retry starts later than this after the call began.
    public var maxElapsed: Duration = .seconds(60)

    public init(maxAttempts: Int = 20, backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(2)), maxRetryAfter: Duration = .seconds(30),
                maxElapsed: Duration = .seconds(60)) {
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.maxRetryAfter = maxRetryAfter
        self.maxElapsed = maxElapsed
    }

    /// The instant after which no retry of a call starting now may begin.
    func budgetEnd(now: ContinuousClock.Instant = .now) -> ContinuousClock.Instant {
        min(now + maxElapsed, RetryDeadline.current ?? now + maxElapsed)
    }

    /// Whether another attempt after `attempt` ones, `delay` from now, still fits the attempts and the time allowed.
    func allowsRetry(after attempt: Int, delay: Duration, budgetEnd: ContinuousClock.Instant) -> Bool {
        attempt < maxAttempts && ContinuousClock.now + delay < budgetEnd
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
