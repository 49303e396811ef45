import KubeClient
import KubeModel

/// A DaemonSet or Deployment as the rollout rules see it: generation, the status counts (a missing count is 0,
/// as Go's `omitempty` drops zeros), its selector and the pod template's tolerations, from KubeModel's typed
/// DaemonSet or Deployment.
public struct Workload: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case daemonSet = "DaemonSet", deployment = "Deployment" }

    public var kind: Kind
    public var name: String
    public var namespace: String
    public var generation: Int
    public var observedGeneration: Int?
    /// DaemonSet `desiredNumberScheduled`; Deployment `spec.replicas` (nil = 1).
    public var desired: Int
    /// DaemonSet `currentNumberScheduled`; Deployment `status.replicas`.
    public var current: Int
    public var updated: Int
    public var ready: Int
    public var available: Int
    public var misscheduled: Int
    public var conditions: [Condition]
    public var selector: [String: String]
    public var tolerations: [Toleration]
    /// The Redis workload of the run (pod template labelled `app=redis`).
    public var isRedis: Bool

    public var reference: String { "\(kind.rawValue)/\(name)" }

    public init(_ daemonSet: DaemonSet) {
        let status = daemonSet.status
        self.init(kind: .daemonSet, metadata: daemonSet.metadata, observedGeneration: status?.observedGeneration,
                  desired: status?.desiredNumberScheduled ?? 0, current: status?.currentNumberScheduled ?? 0,
                  updated: status?.updatedNumberScheduled ?? 0, ready: status?.numberReady ?? 0,
                  available: status?.numberAvailable ?? 0, misscheduled: status?.numberMisscheduled ?? 0,
                  conditions: status?.conditions ?? [], selector: daemonSet.spec?.selector, template: daemonSet.spec?.template)
    }

    public init(_ deployment: Deployment) {
        let status = deployment.status
        self.init(kind: .deployment, metadata: deployment.metadata, observedGeneration: status?.observedGeneration,
                  desired: deployment.spec?.replicas ?? 1, current: status?.replicas ?? 0, updated: status?.updatedReplicas ?? 0,
                  ready: status?.readyReplicas ?? 0, available: status?.availableReplicas ?? 0, misscheduled: 0,
                  conditions: status?.conditions ?? [], selector: deployment.spec?.selector, template: deployment.spec?.template)
    }

    private init(kind: Kind, metadata: ObjectMeta, observedGeneration: Int64?, desired: Int, current: Int, updated: Int,
                 ready: Int, available: Int, misscheduled: Int, conditions: [Condition], selector: LabelSelector?,
                 template: PodTemplateSpec?) {
        self.kind = kind
        name = metadata.name ?? ""
        namespace = metadata.namespace ?? ""
        generation = metadata.generation.map(Int.init) ?? 1
        self.observedGeneration = observedGeneration.map(Int.init)
        self.desired = desired
        self.current = current
        self.updated = updated
        self.ready = ready
        self.available = available
        self.misscheduled = misscheduled
        self.conditions = conditions
        self.selector = selector?.matchLabels ?? [:]
        tolerations = template?.spec?.tolerations ?? []
        isRedis = template?.metadata?.labels?["app"] == "redis"
    }

    /// Whether `pod` is one of this workload's (its labels match the selector).
    public func owns(_ pod: Pod) -> Bool {
        let labels = pod.metadata.labels ?? [:]
        return !selector.isEmpty && selector.allSatisfy { labels[$0.key] == $0.value }
    }

    /// The tolerations the DaemonSet controller adds to every DaemonSet pod (kubernetes
    /// `pkg/controller/daemon/util`): a NotReady, unreachable, cordoned or pressured node still gets its pod.
    static let daemonSetAutomaticTolerations: Set<String> = [
        "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable",
    ]

    /// Whether this workload's pods may run on `node`: every NoSchedule/NoExecute taint tolerated (as the
    /// DaemonSet controller decides eligibility; kverify's manifests use no nodeSelector).
    public func tolerates(_ node: Node) -> Bool {
        (node.spec?.taints ?? []).allSatisfy { taint in
            guard taint.effect == "NoSchedule" || taint.effect == "NoExecute" else { return true }
            if kind == .daemonSet && Self.daemonSetAutomaticTolerations.contains(taint.key) { return true }
            return tolerations.contains { $0.tolerates(taint) }
        }
    }
}

extension Node {
    /// Carries the control-plane `NoSchedule` taint (kind's and kubeadm's control-plane nodes).
    public var isTaintedControlPlane: Bool {
        (spec?.taints ?? []).contains {
            ($0.key == "node-role.kubernetes.io/control-plane" || $0.key == "node-role.kubernetes.io/master") && $0.effect == "NoSchedule"
        }
    }
}

extension Pod {
    /// Every container that must be Ready: the main containers and native sidecars (init containers with
    /// `restartPolicy: Always`).
    public var allContainersReady: Bool {
        let sidecars = Set((spec?.sidecars ?? []).map(\.name))
        let main = status?.containerStatuses ?? []
        let expected = spec?.containers.count ?? main.count
        guard main.count >= expected, main.allSatisfy(\.ready) else { return false }
        let sidecarStatuses = (status?.initContainerStatuses ?? []).filter { sidecars.contains($0.name) }
        return sidecarStatuses.count == sidecars.count && sidecarStatuses.allSatisfy(\.ready)
    }

    public var name: String { metadata.name ?? "<unnamed>" }
    public var nodeName: String? { spec?.nodeName }
}
