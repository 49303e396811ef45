/// `core/v1 Node`: readiness, schedulability, roles and taints.
public struct Node: KubeObject, Hashable {
    public static let apiVersion = "v1"
    public static let kind = "Node"

    public struct Taint: Codable, Hashable, Sendable {
        public var key: String
        public var value: String?
        /// `NoSchedule`, `PreferNoSchedule`, `NoExecute`.
        public var effect: String

        public init(key: String, value: String? = nil, effect: String) {
            self.key = key
            self.value = value
            self.effect = effect
        }

        /// `key=value:Effect`, as kubectl prints it.
        public var summary: String { key + (value.map { "=\($0)" } ?? "") + ":" + effect }
    }

    public struct Spec: Codable, Hashable, Sendable {
        public var unschedulable: Bool
        public var taints: [Taint]

        private enum CodingKeys: String, CodingKey { case unschedulable, taints }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            unschedulable = try c.flag(.unschedulable)
            taints = try c.decodeIfPresent([Taint].self, forKey: .taints) ?? []
        }
    }

    public struct Address: Codable, Hashable, Sendable {
        public var type: String
        public var address: String
    }

    public struct Info: Codable, Hashable, Sendable {
        public var kubeletVersion: String?
        public var osImage: String?
        public var architecture: String?
    }

    public struct Status: Codable, Hashable, Sendable {
        public var conditions: [Condition]
        public var addresses: [Address]
        public var nodeInfo: Info?

        private enum CodingKeys: String, CodingKey { case conditions, addresses, nodeInfo }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            conditions = try c.decodeIfPresent([Condition].self, forKey: .conditions) ?? []
            addresses = try c.decodeIfPresent([Address].self, forKey: .addresses) ?? []
            nodeInfo = try c.decodeIfPresent(Info.self, forKey: .nodeInfo)
        }
    }

    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public var isReady: Bool { status?.conditions["Ready"]?.status == .true }

    /// Roles from `node-role.kubernetes.io/<role>` labels, as `kubectl get nodes` shows them.
    public var roles: [String] {
        let prefix = "node-role.kubernetes.io/"
        return (metadata.labels ?? [:]).keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }.sorted()
    }

    /// Ready, not cordoned, and without a `NoSchedule`/`NoExecute` taint — where an ordinary pod can land.
    public var isSchedulable: Bool {
        guard isReady, spec?.unschedulable != true else { return false }
        return !(spec?.taints ?? []).contains { $0.effect == "NoSchedule" || $0.effect == "NoExecute" }
    }
}

/// `core/v1 Event`.
public struct Event: KubeObject, Hashable {
    public static let apiVersion = "v1"
    public static let kind = "Event"

    public struct InvolvedObject: Codable, Hashable, Sendable {
        public var kind: String?
        public var namespace: String?
        public var name: String?
        public var uid: String?
    }

    public struct Source: Codable, Hashable, Sendable {
        public var component: String?
        public var host: String?
    }

    public var metadata: ObjectMeta
    public var involvedObject: InvolvedObject
    public var reason: String?
    public var message: String?
    /// `Normal` or `Warning`.
    public var type: String?
    public var count: Int?
    public var firstTimestamp: String?
    public var lastTimestamp: String?
    public var eventTime: String?
    public var source: Source?
}

/// `core/v1 Service`.
public struct Service: KubeObject, Hashable {
    public static let apiVersion = "v1"
    public static let kind = "Service"

    public struct Port: Codable, Hashable, Sendable {
        public var name: String?
        public var port: Int
        public var targetPort: IntOrString?
        public var nodePort: Int?
        public var `protocol`: String?
    }

    public struct Spec: Codable, Hashable, Sendable {
        public var type: String?
        public var clusterIP: String?
        public var selector: [String: String]?
        public var ports: [Port]?
    }

    public var metadata: ObjectMeta
    public var spec: Spec?
}

/// `core/v1 Namespace`.
public struct Namespace: KubeObject, Hashable {
    public static let apiVersion = "v1"
    public static let kind = "Namespace"

    public struct Status: Codable, Hashable, Sendable {
        /// `Active` or `Terminating`.
        public var phase: String?
    }

    public var metadata: ObjectMeta
    public var status: Status?

    public init(name: String) { metadata = ObjectMeta(name: name) }
}
