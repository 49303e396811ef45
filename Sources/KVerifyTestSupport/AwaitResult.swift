import Foundation
import Synchronization

/// `task`'s result, or nil when it has none within `timeout`. Unlike a task group racing a sleep, this returns at the
/// deadline even when `task` never ends (a deadlock under test): a group would wait for its child that awaits the
/// stuck task. The timer is a Dispatch timer; the caller still needs a free cooperative thread to resume on, so a
/// deadlock that blocks every one of them is left to the test run's watchdog. A task stuck for good is left behind,
/// which only a failing test does.
public func awaitResult<T: Sendable, E: Error>(of task: Task<T, E>, within timeout: Duration) async -> Result<T, E>? {
    let once = ResumeOnce<Result<T, E>?>()
    return await withCheckedContinuation { continuation in
        once.set(continuation)
        Task.detached { once.resume(await task.result) }
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { once.resume(nil) }
    }
}

/// A continuation resumed by whichever side comes first; the other's resume does nothing.
private final class ResumeOnce<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, Never>?>(nil)

    func set(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(_ value: Value) {
        // Resumed after the lock is released (see docs/architecture.md, Locks).
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}
