import Findings
import Foundation
import KubeClient
import Synchronization

/// Sends requests to every pod's app port through the API server proxy, concurrently across pods, so the
/// exporter's counters move; each pod's paths (`PodTarget.endpoints.trafficPaths`) in turn. An answer that names a
/// pod (the demo app's does) must name the pod it was sent to.
public struct Traffic: Sendable {
    public var namespace: String
    /// Override every target's discovered app port and paths (nil: `PodTarget.endpoints`).
    public var port: Int?
    public var path: String?
    public var requestsPerPod: Int

    public init(namespace: String, port: Int? = nil, path: String? = nil, requestsPerPod: Int = 20) {
        self.namespace = namespace
        self.port = port
        self.path = path
        self.requestsPerPod = requestsPerPod
    }

    public struct PodResult: Sendable, Hashable {
        public var target: PodTarget
        public var answered: Int
        public var errors: [String]
    }

    /// Requests in flight at once, over all pods. Measured on the sim (scripts/bench/pattern_scale.sh): one task per
    /// pod with 200 pods opened 200 TLS connections at once and was slower than a bounded pool of workers.
    public var concurrency = 64

    public func run(_ targets: [PodTarget], api: any KubeAPI) async -> [PodResult] {
        // Round-robin over the pods, so every pod gets its first request early.
        let jobs = (0..<requestsPerPod).flatMap { round in targets.indices.map { ($0, round) } }
        let next = JobCounter()
        let outcomes: [(Int, String?)] = await withTaskGroup(of: [(Int, String?)].self) { group in
            for _ in 0..<max(1, min(concurrency, jobs.count)) {
                group.addTask {
                    var mine: [(Int, String?)] = []
                    while let job = next.take(below: jobs.count) {
                        let (index, round) = jobs[job]
                        let target = targets[index]
                        let paths = path.map { [$0] } ?? target.endpoints.trafficPaths
                        let requestPath = paths[round % paths.count]
                        do {
                            let body = try await api.proxyGet(pod: target.pod, port: port ?? target.endpoints.app.port, path: requestPath,
                                                              namespace: namespace)
                            // The demo app names the pod that answered; another app's body is taken as it comes.
                            struct Answer: Decodable { var pod: String? }
                            let named = (try? JSONDecoder().decode(Answer.self, from: Data(body)))?.pod
                            mine.append((index, named.flatMap { $0 == target.pod ? nil : "answered by pod \($0), not \(target.pod)" }))
                        } catch {
                            mine.append((index, "GET \(requestPath): \(error)"))
                        }
                    }
                    return mine
                }
            }
            var all: [(Int, String?)] = []
            for await part in group { all += part }
            return all
        }
        return targets.indices.map { index in
            let mine = outcomes.filter { $0.0 == index }
            return PodResult(target: targets[index], answered: mine.filter { $0.1 == nil }.count, errors: mine.compactMap(\.1))
        }.sorted { $0.target.pod < $1.target.pod }
    }

    public func findings(_ results: [PodResult]) -> [Finding] {
        results.map { result in
            let observed = "\(result.answered) of \(requestsPerPod) answered"
            guard result.answered == requestsPerPod else {
                let distinct = Array(Set(result.errors)).sorted().prefix(3)
                let paths = path.map { [$0] } ?? result.target.endpoints.trafficPaths
                return .fail("traffic.requests", subject: result.target.subject,
                             expected: "\(requestsPerPod) answers from GET :\(port ?? result.target.endpoints.app.port)"
                                + "\(paths.joined(separator: ",")) through the API proxy",
                             observed: observed, detail: distinct.joined(separator: " | "))
            }
            return .pass("traffic.requests", subject: result.target.subject, expected: "\(requestsPerPod) answers", observed: observed)
        }
    }
}

/// Hands out job indices to a bounded pool of workers (traffic, log reads).
final class JobCounter: Sendable {
    private let next = Mutex(0)

    func take(below limit: Int) -> Int? {
        next.withLock { value in
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}
