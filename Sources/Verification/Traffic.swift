import Findings
import Foundation
import KubeClient
import KubeModel

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

    /// Requests in flight at once, over all pods. Over HTTP/2 they share one connection, so 64 cost no more TLS
    /// handshakes than 16 did (the HTTP/1.1-era bound; a task per pod opened a connection each and was slower):
    /// a 200-pod traffic phase took 2.22 s against 2.54 s with 16 (pattern_scale.sh, same sim).
    public var concurrency = 64

    public func run(_ targets: [PodTarget], api: any KubeAPI) async -> [PodResult] {
        // Round-robin over the pods, so every pod gets its first request early.
        let jobs = (0..<requestsPerPod).flatMap { round in targets.indices.map { ($0, round) } }
        let outcomes: [String?] = await boundedMap(jobs.count, concurrency: concurrency) { job in
            let (index, round) = jobs[job]
            let target = targets[index]
            let paths = path.map { [$0] } ?? target.endpoints.trafficPaths
            let requestPath = paths[round % paths.count]
            do {
                let body = try await api.proxyGet(pod: target.pod, port: port ?? target.endpoints.app.port, path: requestPath,
                                                  namespace: namespace)
                // The demo app names the pod that answered; another app's body is taken as it comes. (Not through
                // JSONDecoder: a body that is not JSON cost it a DecodingError each, 10,000 of them at 500 pods.)
                let named = (try? JSONValue.parse(json: body))?["pod"]?.stringValue
                return named.flatMap { $0 == target.pod ? nil : "answered by pod \($0), not \(target.pod)" }
            } catch {
                return "GET \(requestPath): \(error)"
            }
        }
        var errors = [[String]](repeating: [], count: targets.count), answered = [Int](repeating: 0, count: targets.count)
        for (job, outcome) in outcomes.enumerated() {
            let index = jobs[job].0
            if let outcome { errors[index].append(outcome) } else { answered[index] += 1 }
        }
        return targets.indices.map { PodResult(target: targets[$0], answered: answered[$0], errors: errors[$0]) }
            .sorted { $0.target.pod < $1.target.pod }
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
