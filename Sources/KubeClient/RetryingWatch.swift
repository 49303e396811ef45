import KubeModel

extension KubeAPI {
    /// `watch(…)`, restarted (with a relist, so the `synced` snapshot stays the truth) when it ends on an error a
    /// busy or restarting API server gives — 429, 5xx, a dropped connection, a timeout — with backoff, up to
    /// `maxRestarts` in a row. `watch(…)` itself reconnects only within one list+watch; a 429 on the relist or on
    /// a watch request ends it, and a verification must not fail because the API server asked it to slow down.
    public func retryingWatch(_ resource: Resource, namespace: String?, options: ListOptions = ListOptions(), maxRestarts: Int = 8)
        -> AsyncThrowingStream<WatchUpdate, any Error>
    {
        let (stream, continuation) = AsyncThrowingStream<WatchUpdate, any Error>.makeStream()
        let task = Task {
            var failures = 0
            let backoff = Backoff()
            while !Task.isCancelled {
                do {
                    for try await update in watch(resource, namespace: namespace, options: options) {
                        if update.type == .synced { failures = 0 }
                        continuation.yield(update)
                    }
                    continuation.finish()
                    return
                } catch let error as KubeError where [.tooManyRequests, .serverError, .unreachable, .timedOut, .gone].contains(error.code) {
                    failures += 1
                    guard failures <= maxRestarts else {
                        continuation.finish(throwing: error)
                        return
                    }
                    do { try await Task.sleep(for: backoff.delay(attempt: failures)) } catch { break }
                } catch {
                    continuation.finish(throwing: error)
                    return
                }
            }
            continuation.finish(throwing: CancellationError())
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
