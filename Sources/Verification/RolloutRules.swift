import KubeModel

/// Why a pod (or its node) will not become Ready by waiting longer.
public struct PodProblem: Sendable, Hashable, Codable {
    public var pod: String
    public var node: String?
    /// The container that fails, when one does.
    public var container: String?
    /// `CrashLoopBackOff`, `ImagePullBackOff`, `Unschedulable`, `NodeNotReady`, …
    public var reason: String
    public var message: String?
    /// The container's last termination: exit code and reason.
    public var lastTermination: String?
    public var restartCount: Int?
    /// Filled in by the diagnosis step: the pod's events and the container's last log lines.
    public var events: [String] = []
    public var logTail: [String] = []

    public init(pod: String, node: String?, container: String? = nil, reason: String, message: String? = nil,
                lastTermination: String? = nil, restartCount: Int? = nil) {
        self.pod = pod
        self.node = node
        self.container = container
        self.reason = reason
        self.message = message
        self.lastTermination = lastTermination
        self.restartCount = restartCount
    }
}

/// Where a run's rollout stands.
public enum RolloutState: Sendable, Hashable {
    /// Not done yet; the strings say what is still missing.
    case progressing([String])
    case ready
    /// Waiting longer will not help.
    case failed([PodProblem])
}

/// kstatus-strict readiness of the run's workloads, plus the per-pod and per-node rules kubectl and kstatus
/// leave out. Pure: `evaluate` sees one consistent snapshot and a clock reading.
///
/// - every workload: `observedGeneration ≥ generation`; current, updated, ready and available all equal desired;
///   a Deployment whose `Progressing` condition says `ProgressDeadlineExceeded` has failed;
/// - DaemonSet: desired equals the eligible nodes (every NoSchedule/NoExecute taint tolerated), nothing
///   misscheduled, and exactly one Ready pod on every eligible node;
/// - sidecar Deployment: `nodes` pods Ready on `nodes` distinct nodes, every container (native sidecars
///   included) Ready;
/// - fail fast: a container waiting with CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
///   CreateContainerConfigError (and the other waiting reasons that never heal by themselves); a pod
///   Unschedulable longer than the grace period; a NotReady node that hosts a run pod or is a DaemonSet's
///   eligible node.
public struct RolloutRules: Sendable {
    public var pattern: Pattern
    public var nodes: Int
    public var unschedulableGrace: Duration

    /// Waiting reasons that a kubelet reports for a container that will not start without a change.
    public static let fatalWaitingReasons: Set<String> = [
        "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "CreateContainerError",
        "InvalidImageName", "RunContainerError", "ErrImageNeverPull",
    ]

    public init(pattern: Pattern, nodes: Int, unschedulableGrace: Duration = .seconds(15)) {
        self.pattern = pattern
        self.nodes = nodes
        self.unschedulableGrace = unschedulableGrace
    }

    /// - Parameters:
    ///   - unschedulableFor: how long each pod (by name) has been seen Unschedulable.
    public func evaluate(workloads: [Workload], pods: [Pod], nodes clusterNodes: [Node],
                         unschedulableFor: [String: Duration] = [:]) -> RolloutState {
        let live = pods.filter { $0.metadata.deletionTimestamp == nil }
        var problems: [PodProblem] = []
        var missing: [String] = []
        let nodesByName = Dictionary(clusterNodes.map { ($0.metadata.name ?? "", $0) }, uniquingKeysWith: { a, _ in a })

        for pod in live {
            problems += containerProblems(pod)
            if let scheduled = pod.status?.conditions["PodScheduled"], scheduled.status == .false, scheduled.reason == "Unschedulable" {
                let waited = unschedulableFor[pod.name] ?? .zero
                if waited >= unschedulableGrace {
                    problems.append(PodProblem(pod: pod.name, node: nil, reason: "Unschedulable", message: scheduled.message))
                } else {
                    missing.append("pod \(pod.name) is Unschedulable (\(scheduled.message ?? "no message")); failing after \(unschedulableGrace)")
                }
            }
            if let nodeName = pod.nodeName, let node = nodesByName[nodeName], !node.isReady {
                problems.append(nodeProblem(node, pod: pod.name))
            }
        }

        for workload in workloads.sorted(by: { $0.name < $1.name }) {
            let owned = live.filter(workload.owns)
            missing += statusGaps(workload)
            if workload.kind == .deployment,
               let progressing = workload.conditions["Progressing"], progressing.reason == "ProgressDeadlineExceeded" {
                problems.append(PodProblem(pod: workload.reference, node: nil, reason: "ProgressDeadlineExceeded", message: progressing.message))
            }
            if workload.kind == .daemonSet {
                let eligible = clusterNodes.filter(workload.tolerates)
                for node in eligible where !node.isReady && !problems.contains(where: { $0.node == node.metadata.name }) {
                    problems.append(nodeProblem(node, pod: workload.reference))
                }
                if workload.desired != eligible.count {
                    missing.append("\(workload.reference): desiredNumberScheduled \(workload.desired), eligible nodes \(eligible.count)")
                }
                // Grouped once: filtering every pod for every node made an evaluation quadratic in the cluster size.
                let byNode = Dictionary(grouping: owned, by: \.nodeName)
                for node in eligible {
                    let name = node.metadata.name ?? ""
                    let onNode = byNode[Optional(name)] ?? []
                    let ready = onNode.filter { $0.isReady && $0.allContainersReady }
                    if ready.count != 1 || onNode.count != 1 {
                        missing.append("node \(name): \(ready.count) Ready of \(onNode.count) \(workload.name) pods, want exactly 1 Ready")
                    }
                }
            } else if !workload.isRedis && pattern == .sidecar {
                if workload.desired != nodes {
                    missing.append("\(workload.reference): spec.replicas \(workload.desired), want \(nodes) (one per node)")
                }
                let ready = owned.filter { $0.isReady && $0.allContainersReady }
                let distinct = Set(ready.compactMap(\.nodeName))
                if ready.count != nodes || distinct.count != nodes {
                    missing.append("\(workload.name): \(ready.count) pods Ready with every container on \(distinct.count) distinct nodes, want \(nodes) on \(nodes)")
                }
            } else {
                let ready = owned.filter { $0.isReady && $0.allContainersReady }
                if ready.count != workload.desired {
                    missing.append("\(workload.name): \(ready.count) of \(workload.desired) pods Ready")
                }
            }
        }
        if !problems.isEmpty { return .failed(deduplicated(problems)) }
        return missing.isEmpty ? .ready : .progressing(missing)
    }

    /// The kstatus status-count rules for one workload.
    func statusGaps(_ workload: Workload) -> [String] {
        var gaps: [String] = []
        let observed = workload.observedGeneration ?? 0
        if observed < workload.generation {
            gaps.append("\(workload.reference): generation \(workload.generation) not yet observed (observedGeneration \(observed))")
            return gaps
        }
        let counts = [("current", workload.current), ("updated", workload.updated), ("ready", workload.ready), ("available", workload.available)]
        let short = counts.filter { $0.1 != workload.desired }
        if !short.isEmpty {
            gaps.append("\(workload.reference): " + short.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + " of desired \(workload.desired)")
        }
        if workload.misscheduled > 0 { gaps.append("\(workload.reference): \(workload.misscheduled) pods misscheduled") }
        return gaps
    }

    func containerProblems(_ pod: Pod) -> [PodProblem] {
        let statuses = (pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])
        return statuses.compactMap { status in
            guard let reason = status.state?.waiting?.reason, Self.fatalWaitingReasons.contains(reason) else { return nil }
            return PodProblem(pod: pod.name, node: pod.nodeName, container: status.name, reason: reason,
                              message: status.state?.waiting?.message, lastTermination: Self.describe(status.lastState?.terminated),
                              restartCount: status.restartCount)
        }
    }

    func nodeProblem(_ node: Node, pod: String) -> PodProblem {
        let ready = node.status?.conditions["Ready"]
        return PodProblem(pod: pod, node: node.metadata.name, reason: "NodeNotReady",
                          message: "node \(node.metadata.name ?? "?") Ready=\(ready?.status.rawValue ?? "missing")"
                            + (ready?.reason.map { " (\($0))" } ?? "") + (ready?.message.map { ": \($0)" } ?? ""))
    }

    static func describe(_ terminated: Pod.ContainerState.Terminated?) -> String? {
        guard let terminated else { return nil }
        var text = "exit code \(terminated.exitCode)"
        if let reason = terminated.reason { text += ", reason \(reason)" }
        if let signal = terminated.signal { text += ", signal \(signal)" }
        if let message = terminated.message, !message.isEmpty { text += ": \(message)" }
        return text
    }

    private func deduplicated(_ problems: [PodProblem]) -> [PodProblem] {
        var seen = Set<String>()
        return problems.filter { seen.insert("\($0.pod)|\($0.container ?? "")|\($0.reason)|\($0.node ?? "")").inserted }
    }
}
