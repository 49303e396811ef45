import KubeClient
import KubeModel

/// A DaemonSet or Deployment as the rollout rules see it: generation, the status counts (a missing count is 0,
/// as Go's `omitempty` drops zeros), its selector and the pod template's tolerations. Read from the raw object
/// so the fields kverify needs do not have to be modelled twice.
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
    public var tolerations: [JSONValue]
    /// The Redis workload of the run (pod template labelled `app=redis`).
    public var isRedis: Bool

    public var reference: String { "\(kind.rawValue)/\(name)" }

    public init?(_ object: JSONValue) {
        guard let kindName = object["kind"]?.stringValue, let kind = Kind(rawValue: kindName),
              let name = object.value(at: ["metadata", "name"])?.stringValue else { return nil }
        self.kind = kind
        self.name = name
        namespace = object.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        generation = object.value(at: ["metadata", "generation"])?.intValue ?? 1
        observedGeneration = object.value(at: ["status", "observedGeneration"])?.intValue
        func count(_ field: String) -> Int { object.value(at: ["status", field])?.intValue ?? 0 }
        switch kind {
        case .daemonSet:
            desired = count("desiredNumberScheduled")
            current = count("currentNumberScheduled")
            updated = count("updatedNumberScheduled")
            ready = count("numberReady")
            available = count("numberAvailable")
            misscheduled = count("numberMisscheduled")
        case .deployment:
            desired = object.value(at: ["spec", "replicas"])?.intValue ?? 1
            current = count("replicas")
            updated = count("updatedReplicas")
            ready = count("readyReplicas")
            available = count("availableReplicas")
            misscheduled = 0
        }
        conditions = (try? (object.value(at: ["status", "conditions"]) ?? .array([])).decode(as: [Condition].self)) ?? []
        let labels = object.value(at: ["spec", "selector", "matchLabels"])
        if case .object(let fields)? = labels { selector = fields.compactMapValues(\.stringValue) } else { selector = [:] }
        tolerations = object.value(at: ["spec", "template", "spec", "tolerations"])?.arrayValue ?? []
        isRedis = ManifestPreparation.isRedisWorkload(object)
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
            return tolerations.contains { toleration in
                let key = toleration["key"]?.stringValue ?? ""
                let effect = toleration["effect"]?.stringValue ?? ""
                guard effect.isEmpty || effect == taint.effect else { return false }
                if toleration["operator"]?.stringValue == "Exists" { return key.isEmpty || key == taint.key }
                return key == taint.key && (toleration["value"]?.stringValue ?? "") == (taint.value ?? "")
            }
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
