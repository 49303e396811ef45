import Foundation

/// One kind of object the sim serves: its REST names, scope and subresources.
public struct ResourceType: Sendable, Hashable {
    /// API group; "" for the core group.
    public let group: String
    public let version: String
    /// Plural path segment (`daemonsets`).
    public let plural: String
    public let singular: String
    public let kind: String
    public let namespaced: Bool
    public let shortNames: [String]
    /// `status`, `log`, `proxy`.
    public let subresources: [String]
    /// Whether writes bump `metadata.generation` when the spec changes (workloads do; pods, config do not).
    public let tracksGeneration: Bool

    public var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var hasStatus: Bool { subresources.contains("status") }
    /// `daemonsets.apps`, as the real server names a resource in messages.
    public var qualifiedName: String { group.isEmpty ? plural : "\(plural).\(group)" }

    package static let verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
}

/// The resources the sim knows, in discovery order.
public enum ResourceCatalog {
    public static let all: [ResourceType] = [
        core("namespaces", "namespace", "Namespace", namespaced: false, short: ["ns"], sub: ["status", "finalize"]),
        core("nodes", "node", "Node", namespaced: false, short: ["no"], sub: ["status", "proxy"]),
        core("pods", "pod", "Pod", short: ["po"], sub: ["status", "log", "proxy", "exec", "attach", "portforward"]),
        core("services", "service", "Service", short: ["svc"], sub: ["status", "proxy"]),
        core("endpoints", "endpoints", "Endpoints", short: ["ep"]),
        core("configmaps", "configmap", "ConfigMap", short: ["cm"]),
        core("secrets", "secret", "Secret"),
        core("events", "event", "Event", short: ["ev"]),
        core("persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", short: ["pvc"], sub: ["status"]),
        apps("deployments", "deployment", "Deployment", short: ["deploy"]),
        apps("replicasets", "replicaset", "ReplicaSet", short: ["rs"]),
        apps("daemonsets", "daemonset", "DaemonSet", short: ["ds"]),
        // Served only as POST (APIRouter answers it: every sim client is system:masters); listed for discovery.
        ResourceType(group: "authorization.k8s.io", version: "v1", plural: "selfsubjectaccessreviews", singular: "selfsubjectaccessreview",
                     kind: "SelfSubjectAccessReview", namespaced: false, shortNames: [], subresources: [], tracksGeneration: false),
        // In-cluster clients (a Prometheus in a pod): their identity and what RBAC grants it. Appended, so the
        // indexes above stay put.
        core("serviceaccounts", "serviceaccount", "ServiceAccount", short: ["sa"]),
        rbac("roles", "role", "Role", namespaced: true),
        rbac("rolebindings", "rolebinding", "RoleBinding", namespaced: true),
        rbac("clusterroles", "clusterrole", "ClusterRole", namespaced: false),
        rbac("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", namespaced: false),
        // Stored, validated and listed; not enforced (the sim's loopback network has no policy engine).
        ResourceType(group: "networking.k8s.io", version: "v1", plural: "networkpolicies", singular: "networkpolicy",
                     kind: "NetworkPolicy", namespaced: true, shortNames: ["netpol"], subresources: [], tracksGeneration: true),
        // `standard`, the default class, exists from the start as on kind (local-path, WaitForFirstConsumer): a claim
        // binds when the scheduler places its first pod (`VolumeBinding`).
        ResourceType(group: "storage.k8s.io", version: "v1", plural: "storageclasses", singular: "storageclass",
                     kind: "StorageClass", namespaced: false, shortNames: ["sc"], subresources: [], tracksGeneration: false),
        // The volumes `VolumeBinding` provisions for claims, pinned to their node as local-path's are.
        core("persistentvolumes", "persistentvolume", "PersistentVolume", namespaced: false, short: ["pv"], sub: ["status"]),
    ]

    public static let groups: [(name: String, version: String)] = [
        ("", "v1"), ("apps", "v1"), ("authorization.k8s.io", "v1"), ("rbac.authorization.k8s.io", "v1"), ("networking.k8s.io", "v1"),
        ("storage.k8s.io", "v1"),
    ]

    public static let serviceAccounts = all[13]
    public static let roles = all[14]
    public static let roleBindings = all[15]
    public static let clusterRoles = all[16]
    public static let clusterRoleBindings = all[17]
    public static let persistentVolumeClaims = find(group: "", version: "v1", plural: "persistentvolumeclaims")!
    public static let persistentVolumes = find(group: "", version: "v1", plural: "persistentvolumes")!
    public static let storageClasses = find(group: "storage.k8s.io", version: "v1", plural: "storageclasses")!

    /// The resource served under `group/version` with plural name `plural`.
    public static func find(group: String, version: String, plural: String) -> ResourceType? {
        all.first { $0.group == group && $0.version == version && $0.plural == plural }
    }

    public static func find(kind: String, groupVersion: String) -> ResourceType? {
        all.first { $0.kind == kind && $0.groupVersion == groupVersion }
    }

    public static func resources(group: String, version: String) -> [ResourceType] {
        all.filter { $0.group == group && $0.version == version }
    }

    private static func core(
        _ plural: String, _ singular: String, _ kind: String, namespaced: Bool = true, short: [String] = [],
        sub: [String] = []
    ) -> ResourceType {
        ResourceType(group: "", version: "v1", plural: plural, singular: singular, kind: kind, namespaced: namespaced,
                     shortNames: short, subresources: sub, tracksGeneration: false)
    }

    private static func rbac(_ plural: String, _ singular: String, _ kind: String, namespaced: Bool) -> ResourceType {
        ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: plural, singular: singular, kind: kind,
                     namespaced: namespaced, shortNames: [], subresources: [], tracksGeneration: false)
    }

    private static func apps(_ plural: String, _ singular: String, _ kind: String, short: [String]) -> ResourceType {
        ResourceType(group: "apps", version: "v1", plural: plural, singular: singular, kind: kind, namespaced: true,
                     shortNames: short, subresources: ["status", "scale"], tracksGeneration: true)
    }
}
