import Foundation
import Synchronization

/// A process-wide limit on how many simulated clusters with real pods (gunicorn, redis-server, the exporter) run
/// at once across every test target: they all share one test process, and on two cores a dozen clusters starve
/// each other's probes. A gunicorn that needs more than its liveness probe's 1 s timeout three times in a row gets
/// restarted mid-run — what a real kubelet does, and a failure no real CI node with one kind cluster would see.
///
/// Nested use (a test holding a slot runs `kverify --sim`) does not take a second slot. The limit is
/// `KVERIFY_TEST_SIM_SLOTS` (default 2).
public enum SimSlots {
    @TaskLocal static var held = false

    private static let state = Mutex(State(free: capacity))
    static let capacity: Int = {
        let configured = ProcessInfo.processInfo.environment["KVERIFY_TEST_SIM_SLOTS"].flatMap { Int($0) } ?? 2
        return max(configured, 1)
    }()

    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    /// Runs `body` holding a slot, waiting (in order of arrival) for one to be free.
    public static func withSlot<T>(_ body: () async throws -> T) async throws -> T {
        if held { return try await body() }
        await acquire()
        defer { release() }
        return try await $held.withValue(true) { try await body() }
    }

    private static func acquire() async {
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

    private static func release() {
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
