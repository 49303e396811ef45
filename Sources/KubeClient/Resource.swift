import KubeModel

/// A REST resource: where objects of one kind live (`/apis/apps/v1/namespaces/{ns}/daemonsets`).
public struct Resource: Sendable, Hashable, CustomStringConvertible {
    /// `""` for the core group.
    public var group: String
    public var version: String
    /// Plural lower-case name, e.g. `daemonsets`.
    public var name: String
    public var kind: String
    public var namespaced: Bool

    public init(group: String, version: String, name: String, kind: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.name = name
        self.kind = kind
        self.namespaced = namespaced
    }

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    /// `daemonsets.apps`, as kubectl names a resource unambiguously.
    public var qualifiedName: String { group.isEmpty ? name : "\(name).\(version).\(group)" }

    public var description: String { qualifiedName }

    /// The collection path, e.g. `/api/v1/namespaces/default/pods` or `/api/v1/nodes`.
    public func path(namespace: String?, name objectName: String? = nil, subresource: String? = nil) -> String {
        var path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace { path += "/namespaces/\(namespace.pathEscaped)" }
        path += "/\(name)"
        if let objectName { path += "/\(objectName.pathEscaped)" }
        if let subresource { path += "/\(subresource)" }
        return path
    }

    /// Splits `apps/v1` into group and version.
    public static func split(apiVersion: String) -> (group: String, version: String) {
        let parts = apiVersion.split(separator: "/", maxSplits: 1).map(String.init)
        return parts.count == 2 ? (parts[0], parts[1]) : ("", apiVersion)
    }

    public static let pods = Resource(group: "", version: "v1", name: "pods", kind: "Pod", namespaced: true)
    public static let nodes = Resource(group: "", version: "v1", name: "nodes", kind: "Node", namespaced: false)
    public static let events = Resource(group: "", version: "v1", name: "events", kind: "Event", namespaced: true)
    public static let services = Resource(group: "", version: "v1", name: "services", kind: "Service", namespaced: true)
    public static let namespaces = Resource(group: "", version: "v1", name: "namespaces", kind: "Namespace", namespaced: false)
    public static let daemonSets = Resource(group: "apps", version: "v1", name: "daemonsets", kind: "DaemonSet", namespaced: true)
    public static let deployments = Resource(group: "apps", version: "v1", name: "deployments", kind: "Deployment", namespaced: true)

    /// The resource of a modelled type, known without discovery.
    public static func of<T: KubeObject>(_ type: T.Type) -> Resource? {
        [pods, nodes, events, services, namespaces, daemonSets, deployments].first { $0.kind == T.kind && $0.apiVersion == T.apiVersion }
    }
}

/// `labelSelector` / `fieldSelector` for list and watch.
public struct ListOptions: Sendable, Hashable {
    public var labelSelector: String?
    public var fieldSelector: String?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        return items
    }
}

/// `DeleteOptions.propagationPolicy`.
public enum PropagationPolicy: String, Sendable, CaseIterable {
    case foreground = "Foreground"
    case background = "Background"
    case orphan = "Orphan"

    /// kubectl's `--cascade` spelling.
    var cascade: String { rawValue.lowercased() }
}

extension String {
    /// Escapes a path segment (names are DNS labels, but a proxy path may hold anything).
    var pathEscaped: String { addingPercentEncoding(withAllowedCharacters: .kubePathAllowed) ?? self }

    var queryEscaped: String { addingPercentEncoding(withAllowedCharacters: .kubeQueryAllowed) ?? self }
}

import Foundation

extension CharacterSet {
    static let kubePathAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~:@")
        return set
    }()

    static let kubeQueryAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~")
        return set
    }()
}

/// Builds `path?k=v&…` with each value escaped.
func pathWithQuery(_ path: String, _ items: [(String, String)]) -> String {
    guard !items.isEmpty else { return path }
    return path + "?" + items.map { "\($0.0)=\($0.1.queryEscaped)" }.joined(separator: "&")
}
