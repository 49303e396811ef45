import Findings
import KubeClient
import KubeModel

/// Is this cluster ready for a verification run? Reachability and version, every node's readiness, roles and
/// taints, enough Ready and schedulable nodes, and the permissions kverify uses. Callable step by step from Swift;
/// `kverify preflight` renders its findings.
public struct Preflight: Sendable {
    /// At least this many Ready nodes in all (the cluster size, as kind, k3d, `scripts/setup.sh` and
    /// `kverify daemonset --nodes N` count it, control plane included).
    public var readyNodes: Int?
    /// At least this many Ready nodes where an ordinary pod can land (no NoSchedule/NoExecute taint, not cordoned).
    public var schedulableNodes: Int?
    /// Namespace the permission checks are asked for (kverify creates its run namespaces; namespaced verbs are
    /// asked cluster-wide when nil).
    public var namespace: String?

    public init(readyNodes: Int? = nil, schedulableNodes: Int? = nil, namespace: String? = nil) {
        self.readyNodes = readyNodes
        self.schedulableNodes = schedulableNodes
        self.namespace = namespace
    }

    /// What kverify asks the API server to do during a run.
    public static let requiredPermissions: [SelfSubjectAccessReview.ResourceAttributes] = [
        .init(verb: "list", resource: "nodes"),
        .init(verb: "create", resource: "namespaces"),
        .init(verb: "delete", resource: "namespaces"),
        .init(verb: "patch", group: "apps", resource: "daemonsets"),
        .init(verb: "patch", group: "apps", resource: "deployments"),
        .init(verb: "watch", group: "apps", resource: "daemonsets"),
        .init(verb: "watch", group: "apps", resource: "deployments"),
        .init(verb: "patch", resource: "services"),
        .init(verb: "list", resource: "pods"),
        .init(verb: "watch", resource: "pods"),
        .init(verb: "get", resource: "pods", subresource: "log"),
        .init(verb: "get", resource: "pods", subresource: "proxy"),
        .init(verb: "list", resource: "events"),
    ]

    /// Runs every check. Throws only when the cluster cannot be asked at all (`KubeError`, exit 3 as a rule).
    public func run(_ api: any KubeAPI) async throws -> [Finding] {
        let version = try await api.serverVersion()
        var findings = [Finding.pass("cluster.reachable", subject: "API server", observed: "Kubernetes \(version.gitVersion)")]
        let nodes = try await api.nodes()
        findings += nodes.map(nodeFinding)
        let ready = nodes.filter(\.isReady).count
        let schedulable = nodes.filter(\.isSchedulable).count
        let observed = "\(nodes.count) nodes: \(ready) Ready, \(schedulable) schedulable"
        if let readyNodes {
            findings.append(Finding(
                checkID: "cluster.ready-nodes", subject: "nodes", status: ready >= readyNodes ? .pass : .fail,
                expected: "at least \(readyNodes) Ready nodes", observed: observed,
                detail: ready >= readyNodes ? nil : "wait for the nodes (kubectl get nodes) or start a larger cluster (scripts/setup.sh --nodes \(readyNodes))"))
        }
        if let schedulableNodes {
            findings.append(Finding(
                checkID: "cluster.schedulable-nodes", subject: "nodes", status: schedulable >= schedulableNodes ? .pass : .fail,
                expected: "at least \(schedulableNodes) Ready nodes without NoSchedule/NoExecute taints", observed: observed,
                detail: schedulable >= schedulableNodes ? nil : "add worker nodes, or uncordon / untaint nodes"))
        } else if schedulable == 0 {
            findings.append(.fail("cluster.schedulable-nodes", subject: "nodes", expected: "at least one schedulable Ready node",
                                  observed: observed, detail: "no pod can be placed anywhere"))
        }
        for permission in Self.requiredPermissions {
            findings.append(try await permissionFinding(permission, api: api))
        }
        return findings
    }

    private func nodeFinding(_ node: Node) -> Finding {
        let roles = node.roles.isEmpty ? "<none>" : node.roles.joined(separator: ",")
        let taints = (node.spec?.taints ?? []).map { "\($0.key)\($0.value.map { "=\($0)" } ?? ""):\($0.effect)" }
        let ready = node.status?.conditions["Ready"]
        var observed = node.isReady ? "Ready" : "NotReady"
        if !node.isReady, let reason = ready?.reason { observed += " (\(reason))" }
        observed += ", roles \(roles)"
        if !taints.isEmpty { observed += ", taints \(taints.joined(separator: " "))" }
        if node.spec?.unschedulable == true { observed += ", cordoned" }
        // A NotReady node is reported; whether it sinks the run is the node-count checks' call.
        return Finding(checkID: "cluster.node", subject: "node/\(node.metadata.name ?? "<unnamed>")", status: node.isReady ? .pass : .warn,
                       expected: "Ready", observed: observed, detail: node.isReady ? nil : ready?.message)
    }

    private func permissionFinding(_ attributes: SelfSubjectAccessReview.ResourceAttributes, api: any KubeAPI) async throws -> Finding {
        var asked = attributes
        asked.namespace = attributes.resource == "nodes" || attributes.resource == "namespaces" ? nil : namespace
        let what = "\(attributes.verb) \(attributes.group.map { "\($0)/" } ?? "")\(attributes.resource)"
            + (attributes.subresource.map { "/\($0)" } ?? "")
        let allowed = try await api.canI(asked)
        switch allowed {
        case true?:
            return .pass("cluster.permission", subject: what, expected: "allowed", observed: "allowed")
        case false?:
            return .fail("cluster.permission", subject: what, expected: "allowed", observed: "denied",
                         detail: "grant it to the kubeconfig's user (RBAC), or use a context that has it")
        case nil:
            return .warn("cluster.permission", subject: what, expected: "allowed", observed: "the server cannot tell (no SelfSubjectAccessReview)")
        }
    }
}
