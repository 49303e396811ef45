import Foundation
import Synchronization

/// Process-wide limits on how many simulated clusters run at once across every test target: they all share one
/// test process, and on two cores a dozen clusters starve each other's probes and the sim's own request handling.
///
/// - `.pods` is for clusters with real workloads (gunicorn, redis-server, the exporter). A gunicorn that needs more
///   than its liveness probe's 1 s timeout three times in a row gets restarted mid-run — what a real kubelet does,
///   and a failure no real CI node with one kind cluster would see. `KVERIFY_TEST_SIM_SLOTS` (default 2).
/// - `.cluster` is for the sim's own acceptance tests (kubectl against a sim with a few light pods). Unbounded, ~20
///   of them started together with everything else, and a `kubectl apply` against one did not finish within 60 s
///   on CI. `KVERIFY_TEST_CLUSTER_SLOTS` (default 3).
///
/// A task holding a slot of either kind takes no second one (a test holding a slot runs `kverify --sim`, or a
/// `.pods` suite starts a cluster): nesting never waits, so two pools cannot deadlock.
public enum SimSlots {
    public enum Kind: Sendable { case pods, cluster }

    @TaskLocal static var held = false

    private static let pods = Pool(capacity: configured("KVERIFY_TEST_SIM_SLOTS", default: 2))
    private static let clusters = Pool(capacity: configured("KVERIFY_TEST_CLUSTER_SLOTS", default: 3))

    private static func configured(_ variable: String, default value: Int) -> Int {
        max(ProcessInfo.processInfo.environment[variable].flatMap { Int($0) } ?? value, 1)
    }

    /// Runs `body` holding a slot of `kind`, waiting (in order of arrival) for one to be free.
    public static func withSlot<T>(_ kind: Kind = .pods, _ body: () async throws -> T) async throws -> T {
        if held { return try await body() }
        let pool = kind == .pods ? pods : clusters
        await pool.acquire()
        defer { pool.release() }
        return try await $held.withValue(true) { try await body() }
    }

    /// A counting semaphore whose waiters are served first come, first served.
    private final class Pool: Sendable {
        private struct State {
            var free: Int
            var waiting: [CheckedContinuation<Void, Never>] = []
        }
        private let state: Mutex<State>

        init(capacity: Int) { state = Mutex(State(free: capacity)) }

        func acquire() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let granted = state.withLock { state -> Bool in
                    if state.free > 0 {
                        state.free -= 1
                        return true
                    }
                    state.waiting.append(continuation)
                    return false
                }
                if granted { continuation.resume() }
            }
        }

        func release() {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiting.isEmpty {
                    state.free += 1
                    return nil
                }
                return state.waiting.removeFirst()
            }
            next?.resume()
        }
    }
}

import Testing

/// `@Suite(..., .simSlot)`: the whole suite runs holding one `SimSlots` slot (for suites that keep a cluster with
/// real pods for all their tests); on a test, just that test.
public struct SimSlotTrait: SuiteTrait, TestTrait, TestScoping {
    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await SimSlots.withSlot { try await function() }
    }
}

extension Trait where Self == SimSlotTrait {
    public static var simSlot: Self { SimSlotTrait() }
}
