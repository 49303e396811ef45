/// `apps/v1 DaemonSet`: spec fields the rollout rules need and the whole status.
public struct DaemonSet: KubeObject, Hashable {
    public static let apiVersion = "apps/v1"
    public static let kind = "DaemonSet"

    public struct UpdateStrategy: Codable, Hashable, Sendable {
        public struct RollingUpdate: Codable, Hashable, Sendable {
            public var maxUnavailable: IntOrString?
            public var maxSurge: IntOrString?
        }
        /// `RollingUpdate` or `OnDelete`.
        public var type: String?
        public var rollingUpdate: RollingUpdate?
    }

    public struct Spec: Codable, Hashable, Sendable {
        public var selector: LabelSelector?
        public var updateStrategy: UpdateStrategy?
        public var template: PodTemplateSpec?
    }

    public struct Status: Codable, Hashable, Sendable {
        public var currentNumberScheduled: Int
        public var desiredNumberScheduled: Int
        public var numberAvailable: Int
        public var numberMisscheduled: Int
        public var numberReady: Int
        public var numberUnavailable: Int
        public var updatedNumberScheduled: Int
        public var observedGeneration: Int64?
        public var conditions: [Condition]

        private enum CodingKeys: String, CodingKey {
            case currentNumberScheduled, desiredNumberScheduled, numberAvailable, numberMisscheduled, numberReady
            case numberUnavailable, updatedNumberScheduled, observedGeneration, conditions
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            currentNumberScheduled = try c.count(.currentNumberScheduled)
            desiredNumberScheduled = try c.count(.desiredNumberScheduled)
            numberAvailable = try c.count(.numberAvailable)
            numberMisscheduled = try c.count(.numberMisscheduled)
            numberReady = try c.count(.numberReady)
            numberUnavailable = try c.count(.numberUnavailable)
            updatedNumberScheduled = try c.count(.updatedNumberScheduled)
            observedGeneration = try c.decodeIfPresent(Int64.self, forKey: .observedGeneration)
            conditions = try c.decodeIfPresent([Condition].self, forKey: .conditions) ?? []
        }
    }

    public var metadata: ObjectMeta
    public var spec: Spec?
    /// A freshly created object has no status yet; that reads as all counts zero.
    public var status: Status?
}

/// `apps/v1 Deployment`.
public struct Deployment: KubeObject, Hashable {
    public static let apiVersion = "apps/v1"
    public static let kind = "Deployment"

    public struct Spec: Codable, Hashable, Sendable {
        /// `nil` means the server default, 1.
        public var replicas: Int?
        public var selector: LabelSelector?
        public var template: PodTemplateSpec?
    }

    public struct Status: Codable, Hashable, Sendable {
        public var replicas: Int
        public var updatedReplicas: Int
        public var readyReplicas: Int
        public var availableReplicas: Int
        public var unavailableReplicas: Int
        public var observedGeneration: Int64?
        public var conditions: [Condition]

        private enum CodingKeys: String, CodingKey {
            case replicas, updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas
            case observedGeneration, conditions
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            replicas = try c.count(.replicas)
            updatedReplicas = try c.count(.updatedReplicas)
            readyReplicas = try c.count(.readyReplicas)
            availableReplicas = try c.count(.availableReplicas)
            unavailableReplicas = try c.count(.unavailableReplicas)
            observedGeneration = try c.decodeIfPresent(Int64.self, forKey: .observedGeneration)
            conditions = try c.decodeIfPresent([Condition].self, forKey: .conditions) ?? []
        }
    }

    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?
}

/// A workload's pod template: the labels and the scheduling fields the rollout rules read.
public struct PodTemplateSpec: Codable, Hashable, Sendable {
    public struct Spec: Codable, Hashable, Sendable {
        public var tolerations: [Toleration]?
    }

    public var metadata: ObjectMeta?
    public var spec: Spec?
}

/// `core.v1.Toleration`.
public struct Toleration: Codable, Hashable, Sendable {
    public var key: String?
    /// `Exists` or `Equal` (the default).
    public var `operator`: String?
    public var value: String?
    /// Empty matches every effect.
    public var effect: String?

    public init(key: String? = nil, operator: String? = nil, value: String? = nil, effect: String? = nil) {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
    }

    /// Whether this toleration tolerates `taint`, as the scheduler and the DaemonSet controller decide.
    public func tolerates(_ taint: Node.Taint) -> Bool {
        guard (effect ?? "").isEmpty || effect == taint.effect else { return false }
        if `operator` == "Exists" { return (key ?? "").isEmpty || key == taint.key }
        return key == taint.key && (value ?? "") == (taint.value ?? "")
    }
}
