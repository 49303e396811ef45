import Findings
import Foundation
import KubeClient

/// Sends requests to every pod's app port through the API server proxy, concurrently across pods, so the
/// exporter's counters move. An answer that names a pod (the demo app's does) must name the pod it was sent to.
public struct Traffic: Sendable {
    public var namespace: String
    public var port: Int
    public var path: String
    public var requestsPerPod: Int

    public init(namespace: String, port: Int = 8000, path: String = "/", requestsPerPod: Int = 20) {
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

    public func run(_ targets: [PodTarget], api: any KubeAPI) async -> [PodResult] {
        await withTaskGroup(of: PodResult.self) { group in
            for target in targets {
                group.addTask {
                    var answered = 0
                    var errors: [String] = []
                    for _ in 0..<requestsPerPod {
                        do {
                            let body = try await api.proxyGet(pod: target.pod, port: port, path: path, namespace: namespace)
                            // The demo app names the pod that answered; another app's body is taken as it comes.
                            struct Answer: Decodable { var pod: String? }
                            let named = (try? JSONDecoder().decode(Answer.self, from: Data(body)))?.pod
                            if let named, named != target.pod {
                                errors.append("answered by pod \(named), not \(target.pod)")
                            } else {
                                answered += 1
                            }
                        } catch {
                            errors.append("\(error)")
                        }
                    }
                    return PodResult(target: target, answered: answered, errors: errors)
                }
            }
            var results: [PodResult] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.target.pod < $1.target.pod }
        }
    }

    public func findings(_ results: [PodResult]) -> [Finding] {
        results.map { result in
            let observed = "\(result.answered) of \(requestsPerPod) answered"
            guard result.answered == requestsPerPod else {
                let distinct = Array(Set(result.errors)).sorted().prefix(3)
                return .fail("traffic.requests", subject: result.target.subject,
                             expected: "\(requestsPerPod) answers from GET :\(port)\(path) through the API proxy",
                             observed: observed, detail: distinct.joined(separator: " | "))
            }
            return .pass("traffic.requests", subject: result.target.subject, expected: "\(requestsPerPod) answers", observed: observed)
        }
    }
}
