import Foundation
import KubeClient
import MetricRules
import PromText

/// Waits until the sum of a metric's series on a pod satisfies a predicate, like efficientgo/e2e's
/// `WaitSumMetrics(Greater(0), "…")`: scrapes through the API proxy until it holds or the deadline passes.
/// Metrics have no watch, so this re-scrapes, with a growing pause between attempts (never past the deadline).
///
/// ```swift
/// let total = try await MetricWait(api: api, namespace: ns)
///     .sum("gunicorn_worker_requests_total", of: target, .greater(0), timeout: .seconds(30))
/// ```
public struct MetricWait: Sendable {
    public var api: any KubeAPI
    public var namespace: String
    /// Override the target's discovered metrics port and path (nil: `PodTarget.endpoints`).
    public var port: Int?
    public var path: String?

    public init(api: any KubeAPI, namespace: String, port: Int? = nil, path: String? = nil) {
        self.api = api
        self.namespace = namespace
        self.port = port
        self.path = path
    }

    public struct TimedOut: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The sum of every sample named `metric` (for a histogram name: its `_count`; pass the sample name to pick).
    public static func sum(_ metric: String, in exposition: Exposition) -> Double? {
        let samples = exposition.families.flatMap(\.samples).filter { $0.name == metric || $0.name == metric + "_total" }
        return samples.isEmpty ? nil : samples.reduce(0) { $0 + $1.value }
    }

    /// - Returns: the sum that satisfied `predicate`.
    /// - Throws: `TimedOut` naming the metric, the pod, the predicate and the last value (or error) seen.
    @discardableResult
    public func sum(_ metric: String, of target: PodTarget, _ predicate: ValuePredicate, timeout: Duration) async throws -> Double {
        try await scrape(until: metric, of: target, predicate, timeout: timeout).sum
    }

    /// As `sum`, and also the bytes of the scrape that satisfied `predicate`, for a caller that judges that scrape
    /// instead of fetching another.
    public func scrape(until metric: String, of target: PodTarget, _ predicate: ValuePredicate,
                       timeout: Duration) async throws -> (sum: Double, bytes: [UInt8]) {
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(100)
        var last = "no scrape yet"
        while true {
            do {
                let bytes = try await api.proxyGet(pod: target.pod, port: port ?? target.endpoints.metrics.port,
                                                   path: path ?? target.endpoints.metrics.path, namespace: namespace)
                let exposition = try ExpositionParser.parse(bytes, format: FormatDetection.sniff(bytes))
                if let value = Self.sum(metric, in: exposition) {
                    if predicate.holds(for: value) { return (value, bytes) }
                    last = "sum \(value)"
                } else {
                    last = "no \(metric) series (\(exposition.sampleCount) samples in all)"
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                last = "\(error)"
            }
            let now = ContinuousClock.now
            guard now < deadline else {
                throw TimedOut(description: "\(metric) on \(target.subject): wanted sum \(predicate) within \(timeout), last saw \(last)")
            }
            try await Task.sleep(until: min(now + pause, deadline))
            pause = min(pause * 2, .seconds(2))
        }
    }
}

extension ValuePredicate {
    /// `Greater(x)` in efficientgo/e2e's words.
    public static func greater(_ bound: Double) -> ValuePredicate { .compare(.greater, bound) }
    public static func equals(_ bound: Double) -> ValuePredicate { .compare(.equal, bound) }
}
