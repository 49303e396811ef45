import Foundation

/// Runs blocking work (a `poll()` loop, a blocking connect, a child process's pipes) on a thread of its own and
/// awaits it. On the cooperative pool (one thread per core) such work would stall unrelated tasks.
/// Cancellation is not forwarded: `body` bounds itself with its own deadline.
public func runBlocking<T>(_ body: @escaping @Sendable () throws -> sending T) async throws -> sending T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}
