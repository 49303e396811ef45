import Synchronization

/// Runs `body` for every index below `count`, at most `concurrency` at a time, and returns the results in index order:
/// the fan-out of the phases that reach every pod through the API server (traffic, log reads). A bounded pool, not a
/// task per pod: 200 tasks at once opened 200 TLS connections over HTTP/1.1 and were slower (pattern_scale.sh).
func boundedMap<T: Sendable>(_ count: Int, concurrency: Int, _ body: @escaping @Sendable (Int) async -> T) async -> [T] {
    let next = JobCounter()
    let parts = await withTaskGroup(of: [(Int, T)].self) { group in
        for _ in 0..<max(1, min(concurrency, count)) {
            group.addTask {
                var mine: [(Int, T)] = []
                while let index = next.take(below: count) { mine.append((index, await body(index))) }
                return mine
            }
        }
        var all: [(Int, T)] = []
        for await part in group { all += part }
        return all
    }
    return parts.sorted { $0.0 < $1.0 }.map(\.1)
}

/// Hands out job indices to the workers of `boundedMap`.
private final class JobCounter: Sendable {
    private let next = Mutex(0)

    func take(below limit: Int) -> Int? {
        next.withLock { value in
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}
