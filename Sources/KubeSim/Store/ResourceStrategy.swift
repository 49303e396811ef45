import Foundation
import KubeModel

/// What one kind adds to the store's generic create and update, as the real API server's registry strategies do:
/// validation beyond the object's identity, and values the server allocates. The store calls it with its lock
/// held, after defaults are applied; `stored` holds the other objects of the same kind.
package struct ResourceStrategy: Sendable {
    var prepareForCreate: @Sendable (_ object: inout JSONValue, _ name: String, _ stored: [JSONValue]) throws -> Void = { _, _, _ in }
    var prepareForUpdate: @Sendable (_ object: inout JSONValue, _ old: JSONValue, _ stored: [JSONValue]) throws -> Void = { _, _, _ in }
    /// Whether the strategy reads `stored`. Only allocation across a kind does (Services' nodePorts); collecting
    /// the other objects for every pod and event write made 1,000-pod rollouts quadratic (profiled: 27 % of the
    /// sim's time).
    var readsStored = false

    func prepareForCreate(_ object: inout JSONValue, name: String, stored: [JSONValue]) throws {
        try prepareForCreate(&object, name, stored)
    }

    func prepareForUpdate(_ object: inout JSONValue, old: JSONValue, stored: [JSONValue]) throws {
        try prepareForUpdate(&object, old, stored)
    }

    static func `for`(_ resource: ResourceType) -> ResourceStrategy {
        switch (resource.group, resource.plural) {
        case ("", "services"): services
        case ("apps", "daemonsets"), ("apps", "deployments"), ("apps", "replicasets"): workloads(resource)
        case ("networking.k8s.io", "networkpolicies"): networkPolicies(resource)
        default: ResourceStrategy()
        }
    }

    // MARK: NetworkPolicies: validated as the real server does (`NetworkPolicyValidation`), not enforced

    static func networkPolicies(_ resource: ResourceType) -> ResourceStrategy {
        @Sendable func validate(_ object: JSONValue) throws {
            let causes = NetworkPolicyValidation.causes(object)
            guard causes.isEmpty else { throw APIError.invalid(resource, object.string(at: "metadata", "name") ?? "", causes: causes) }
        }
        return ResourceStrategy(prepareForCreate: { object, _, _ in try validate(object) },
                                prepareForUpdate: { object, _, _ in try validate(object) })
    }

    // MARK: Services: nodePort allocation

    static let services = ResourceStrategy(
        prepareForCreate: { object, name, stored in try allocateNodePorts(&object, name: name, stored: stored) },
        prepareForUpdate: { object, old, stored in
            keepNodePorts(&object, from: old)
            try allocateNodePorts(&object, name: object.string(at: "metadata", "name") ?? "", stored: stored)
        },
        readsStored: true
    )

    /// Gives each port of a NodePort Service a nodePort from 30000–32767, and rejects one another Service holds
    /// with the real server's 422.
    static func allocateNodePorts(_ object: inout JSONValue, name: String, stored: [JSONValue]) throws {
        guard ["NodePort", "LoadBalancer"].contains(object.string(at: "spec", "type") ?? "") else { return }
        let services = ResourceCatalog.all[3]
        let taken = Set(stored.flatMap { service in
            (service.value(at: ["spec", "ports"])?.arrayValue ?? []).compactMap { $0["nodePort"]?.intValue }
        })
        var used = taken
        var ports = object.value(at: ["spec", "ports"])?.arrayValue ?? []
        for index in ports.indices {
            if let requested = ports[index]["nodePort"]?.intValue {
                guard (30000...32767).contains(requested) else {
                    throw APIError.invalid(services, name, field: "spec.ports[\(index)].nodePort", value: requested,
                                           why: "provided port is not in the valid range. The range of valid ports is 30000-32767")
                }
                guard !taken.contains(requested) else {
                    throw APIError.invalid(services, name, field: "spec.ports[\(index)].nodePort", value: requested,
                                           why: "provided port is already allocated")
                }
                used.insert(requested)
                continue
            }
            guard let free = (30000...32767).lazy.map({ _ in Int.random(in: 30000...32767) }).first(where: { !used.contains($0) }) else { continue }
            used.insert(free)
            ports[index].set(["nodePort"], to: .number(Double(free)))
        }
        object.set(["spec", "ports"], to: .array(ports))
    }

    /// An update that leaves nodePort out keeps the one allocated before (as the real server does for a port it
    /// can match by name or number).
    static func keepNodePorts(_ object: inout JSONValue, from old: JSONValue) {
        let previous = old.value(at: ["spec", "ports"])?.arrayValue ?? []
        guard var ports = object.value(at: ["spec", "ports"])?.arrayValue else { return }
        for index in ports.indices where ports[index]["nodePort"] == nil {
            let match = previous.first { ($0["name"] != nil && $0["name"] == ports[index]["name"]) || $0["port"] == ports[index]["port"] }
            if let nodePort = match?["nodePort"] { ports[index].set(["nodePort"], to: nodePort) }
        }
        object.set(["spec", "ports"], to: .array(ports))
    }

    // MARK: apps/v1 workloads: the selector must select the template

    static func workloads(_ resource: ResourceType) -> ResourceStrategy {
        ResourceStrategy(
            prepareForCreate: { object, name, _ in try validateSelector(resource, object, name: name) },
            prepareForUpdate: { object, _, _ in try validateSelector(resource, object, name: object.string(at: "metadata", "name") ?? "") }
        )
    }

    /// apps/v1 workloads need a selector, and it must select the pod template's labels (the real validation).
    static func validateSelector(_ resource: ResourceType, _ object: JSONValue, name: String) throws {
        guard let selector = object.value(at: ["spec", "selector"]), selector.objectValue?.isEmpty == false else {
            throw APIError.required(resource, name, field: "spec.selector")
        }
        let labels = (object.value(at: ["spec", "template", "metadata", "labels"])?.objectValue ?? [:]).compactMapValues(\.stringValue)
        guard let query = LabelQuery(selector: selector), query.matches(labels) else {
            let rendered = "map[string]string{" + labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ", ") + "}"
            throw APIError.invalid(resource, name, field: "spec.template.metadata.labels", value: rendered,
                                   why: "`selector` does not match template `labels`")
        }
    }
}
