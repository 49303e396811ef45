import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Set when the awaiting task is cancelled; checked by blocking loops between batches and during sleeps.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    func cancel() { flag.store(true, ordering: .relaxed) }

    func check() throws {
        if flag.load(ordering: .relaxed) { throw CancellationError() }
    }

    /// Sleeps until `instant` in slices of at most 50 ms, so cancellation is noticed promptly.
    func sleep(until instant: ContinuousClock.Instant) throws {
        while true {
            try check()
            let remaining = instant - .now
            guard remaining > .zero else { return }
            let slice = min(remaining, .milliseconds(50))
            let (seconds, attoseconds) = slice.components
            var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
            _ = nanosleep(&request, nil)
        }
    }
}

extension RedisAuditor {
    /// Runs `body` on a Dispatch thread and awaits it. The audit and the expiry observation block in `poll()` and
    /// in timed sleeps; on the cooperative pool (one thread per core) that would stall unrelated tasks, and a
    /// busy pool would in turn delay the observation's samples and distort the timeline it measures.
    func offThePool<T: Sendable>(_ body: @escaping (CancellationFlag) throws -> T) async throws -> T {
        let flag = CancellationFlag()
        let work = BlockingWork(body: body)
        let outcome: Result<T, any Error> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(returning: Result { try work.body(flag) })
                }
            }
        } onCancel: {
            flag.cancel()
        }
        return try outcome.get()
    }
}

/// The work closure captures the auditor and its connection, which are not thread-safe. Handing them to the
/// worker thread is sound (hence unchecked) because the awaiting task does not touch them until the worker is done.
private struct BlockingWork<T>: @unchecked Sendable {
    let body: (CancellationFlag) throws -> T
}
