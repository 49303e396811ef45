import Findings
import KubeClient
import KubeModel

/// Gathers the evidence for failing pods: the pod's events (by `involvedObject.uid`) and the last log lines of
/// the failing container (its previous instance's log is what a crash loop shows; the current one is asked
/// for, which on a real kubelet is the restarted container's). Each lookup that fails is noted, not fatal.
public struct Diagnosis: Sendable {
    public var namespace: String
    public var logLines: Int

    public init(namespace: String, logLines: Int = 20) {
        self.namespace = namespace
        self.logLines = logLines
    }

    /// The container that keeps a pod from being Ready: an init container that has not completed (waiting,
    /// failed, or a native sidecar not Ready), else the first main container not Ready. A completed init container
    /// reports `ready: false` for ever and is never the culprit.
    public static func blockingContainer(of pod: Pod) -> Pod.ContainerStatus? {
        let sidecars = Set((pod.spec?.sidecars ?? []).map(\.name))
        let initBlocking = (pod.status?.initContainerStatuses ?? []).first { status in
            if sidecars.contains(status.name) { return !status.ready }
            return status.state?.terminated?.exitCode != 0
        }
        return initBlocking ?? (pod.status?.containerStatuses ?? []).first { !$0.ready }
    }

    /// The problem a pod still not Ready at the deadline shows, named after its blocking container.
    public static func timeoutProblem(_ pod: Pod) -> PodProblem {
        let waiting = blockingContainer(of: pod)
        return PodProblem(pod: pod.name, node: pod.nodeName, container: waiting?.name,
                          reason: waiting?.state?.waiting?.reason ?? pod.status?.phase?.rawValue ?? "NotReady",
                          message: waiting?.state?.waiting?.message,
                          lastTermination: RolloutRules.describe(waiting?.lastState?.terminated), restartCount: waiting?.restartCount)
    }

    public func enrich(_ problems: [PodProblem], pods: [Pod], api: any KubeAPI) async -> [PodProblem] {
        var enriched: [PodProblem] = []
        for var problem in problems {
            if let pod = pods.first(where: { $0.name == problem.pod }) {
                if let uid = pod.metadata.uid {
                    do {
                        // Oldest first by the event's own time: servers do not promise list order.
                        let events = try await api.events(forUID: uid, namespace: namespace)
                        problem.events = events.sorted { Self.order($0) < Self.order($1) }.map(Self.describe)
                    } catch {
                        problem.events = ["(events could not be read: \(error))"]
                    }
                }
                // A container that never started (pull failure, bad config) has no log to read.
                if let container = problem.container, !Self.neverStarted.contains(problem.reason) {
                    do {
                        let log = try await api.logs(pod: problem.pod, namespace: namespace, container: container, tailLines: logLines)
                        problem.logTail = log.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                            .suffix(logLines).filter { !$0.isEmpty }
                    } catch {
                        problem.logTail = ["(log could not be read: \(error))"]
                    }
                }
            }
            enriched.append(problem)
        }
        return enriched
    }

    static let neverStarted: Set<String> = [
        "Unschedulable", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
    ]

    /// As `kubectl describe` orders events: by last occurrence; ties (timestamps have whole seconds) by first
    /// occurrence, then by the order the server stored them. RFC 3339 UTC timestamps sort as text.
    static func order(_ event: Event) -> (String, String, Int) {
        let last = event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata.creationTimestamp ?? ""
        let first = event.firstTimestamp ?? event.eventTime ?? event.metadata.creationTimestamp ?? ""
        return (last, first, Int(event.metadata.resourceVersion ?? "") ?? 0)
    }

    /// `Warning BackOff (x3): Back-off restarting failed container app`.
    static func describe(_ event: Event) -> String {
        var text = "\(event.type ?? "Normal") \(event.reason ?? "?")"
        if let count = event.count, count > 1 { text += " (x\(count))" }
        if let message = event.message { text += ": \(message)" }
        return text
    }

    /// One failing finding per problem, with the whole diagnosis in its detail.
    public static func findings(_ problems: [PodProblem]) -> [Finding] {
        problems.map { problem in
            var observed = problem.reason
            if let message = problem.message, !message.isEmpty { observed += ": \(message)" }
            var detail: [String] = []
            if let node = problem.node { detail.append("node \(node)") }
            if let container = problem.container { detail.append("container \(container)") }
            if let restarts = problem.restartCount, restarts > 0 { detail.append("\(restarts) restarts") }
            if let last = problem.lastTermination { detail.append("last termination: \(last)") }
            if !problem.events.isEmpty { detail.append("events: " + problem.events.joined(separator: " | ")) }
            if !problem.logTail.isEmpty { detail.append("last \(problem.logTail.count) log lines:\n    " + problem.logTail.joined(separator: "\n    ")) }
            detail.append(hint(problem.reason))
            let subject = problem.pod.contains("/") ? problem.pod : "pod/\(problem.pod)" + (problem.container.map { " container \($0)" } ?? "")
            return Finding.fail("rollout.pod", subject: subject, expected: "Ready", observed: observed,
                                detail: detail.joined(separator: "; "))
        }
    }

    static func hint(_ reason: String) -> String {
        switch reason {
        case "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull":
            "next: check the image name (--image-app/--image-redis) and that the nodes can pull it (kind load docker-image)"
        case "CrashLoopBackOff", "RunContainerError", "CreateContainerError":
            "next: read the log lines above; the container exits soon after it starts"
        case "CreateContainerConfigError":
            "next: a referenced ConfigMap/Secret key or env source is missing"
        case "Unschedulable":
            "next: fewer --nodes, more nodes, or lift the taints/affinity that keep the pod off the nodes"
        case "NodeNotReady":
            "next: kubectl describe node; the node's kubelet is not reporting Ready"
        case "ProgressDeadlineExceeded":
            "next: the Deployment made no progress within its progressDeadlineSeconds"
        default:
            "next: kubectl describe pod"
        }
    }
}
