import Foundation
import SimStore
import KubeModel

/// Who sent a request, as the API server's authenticators decide: the holder of a client certificate signed by the
/// sim's CA (kind's admin, `system:masters`), or a ServiceAccount by its bearer token.
package enum Identity: Sendable, Equatable {
    case admin
    case serviceAccount(ServiceAccountTokens.Subject)
}

/// RBAC for ServiceAccounts, as the real authorizer evaluates it: Roles bound in the request's namespace and
/// ClusterRoles bound there or cluster-wide, each rule matching API group, resource (or `resource/subresource`),
/// verb and, when given, resource names; `*` matches everything. Discovery and health paths are open to every
/// authenticated user (the `system:discovery` and `system:public-info-viewer` roles).
package struct RBACAuthorizer: Sendable {
    let store: ObjectStore

    struct Attributes {
        var verb: String
        var group: String
        var resource: String
        var subresource: String?
        var namespace: String?
        var name: String?
    }

    /// The request's verb and object, or nil for a non-resource path.
    static func attributes(_ request: APIRequest) -> Attributes? {
        guard let target = ResourceTarget(segments: request.segments) else { return nil }
        let verb: String
        switch request.method {
        case "GET", "HEAD":
            verb = target.name == nil ? (request.flag("watch") ? "watch" : "list") : (request.flag("watch") ? "watch" : "get")
        case "POST": verb = "create"
        case "PUT": verb = "update"
        case "PATCH": verb = "patch"
        case "DELETE": verb = target.name == nil ? "deletecollection" : "delete"
        default: verb = request.method.lowercased()
        }
        return Attributes(verb: verb, group: target.resource.group, resource: target.resource.plural, subresource: target.subresource,
                          namespace: target.namespace, name: target.name)
    }

    /// Nil when allowed; otherwise the real server's 403.
    func check(_ request: APIRequest, as subject: ServiceAccountTokens.Subject) -> APIError? {
        guard let attributes = Self.attributes(request) else {
            let open = ["api", "apis", "version", "healthz", "livez", "readyz", "openapi"]
            if request.method == "GET", let first = request.segments.first, open.contains(first) { return nil }
            if request.method == "POST", request.segments.count == 4, request.segments[3] == "selfsubjectaccessreviews" { return nil }
            return APIError(code: 403, reason: "Forbidden",
                            message: "forbidden: User \"\(subject.userName)\" cannot \(request.method.lowercased()) path \"\(request.path)\"")
        }
        if allows(subject, attributes) { return nil }
        let resource = attributes.resource + (attributes.subresource.map { "/\($0)" } ?? "")
        let qualified = attributes.group.isEmpty ? attributes.resource : "\(attributes.resource).\(attributes.group)"
        let named = attributes.name.map { " \"\($0)\"" } ?? ""
        let scope = attributes.namespace.map { " in the namespace \"\($0)\"" } ?? " at the cluster scope"
        return APIError(code: 403, reason: "Forbidden",
                        message: "\(qualified)\(named) is forbidden: User \"\(subject.userName)\" cannot \(attributes.verb) resource \"\(resource)\" in API group \"\(attributes.group)\"\(scope)")
    }

    func allows(_ subject: ServiceAccountTokens.Subject, _ attributes: Attributes) -> Bool {
        var rules: [JSONValue] = []
        func bound(_ binding: JSONValue, namespace: String?) -> Bool {
            (binding["subjects"]?.arrayValue ?? []).contains { item in
                switch item["kind"]?.stringValue {
                case "ServiceAccount":
                    return item["name"]?.stringValue == subject.name
                        && (item["namespace"]?.stringValue ?? namespace) == subject.namespace
                case "User": return item["name"]?.stringValue == subject.userName
                case "Group": return subject.groups.contains(item["name"]?.stringValue ?? "")
                default: return false
                }
            }
        }
        func roleRules(_ binding: JSONValue, namespace: String?) -> [JSONValue] {
            guard let name = binding.value(at: ["roleRef", "name"])?.stringValue else { return [] }
            let role: JSONValue?
            switch binding.value(at: ["roleRef", "kind"])?.stringValue {
            case "Role":
                guard let namespace else { return [] }
                role = try? store.get(ResourceCatalog.roles, namespace: namespace, name: name)
            case "ClusterRole": role = try? store.get(ResourceCatalog.clusterRoles, namespace: nil, name: name)
            default: role = nil
            }
            return role?["rules"]?.arrayValue ?? []
        }
        if let namespace = attributes.namespace {
            for binding in store.list(ResourceCatalog.roleBindings, namespace: namespace).items where bound(binding, namespace: namespace) {
                rules += roleRules(binding, namespace: namespace)
            }
        }
        for binding in store.list(ResourceCatalog.clusterRoleBindings, namespace: nil).items where bound(binding, namespace: nil) {
            rules += roleRules(binding, namespace: nil)
        }
        return rules.contains { Self.matches($0, attributes) }
    }

    static func matches(_ rule: JSONValue, _ attributes: Attributes) -> Bool {
        func list(_ field: String) -> [String] { rule[field]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let resource = attributes.resource + (attributes.subresource.map { "/\($0)" } ?? "")
        let groups = list("apiGroups"), resources = list("resources"), verbs = list("verbs"), names = list("resourceNames")
        guard groups.contains("*") || groups.contains(attributes.group) else { return false }
        guard resources.contains("*") || resources.contains(resource)
                || (attributes.subresource != nil && resources.contains("*/\(attributes.subresource!)")) else { return false }
        guard verbs.contains("*") || verbs.contains(attributes.verb) else { return false }
        if !names.isEmpty {
            guard let name = attributes.name, names.contains(name) else { return false }
        }
        return true
    }
}
