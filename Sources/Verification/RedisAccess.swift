import Foundation
import KubeClient
import KubeModel

/// How a run reaches Redis when no `--redis-addr` is given (`--redis-access`).
public enum RedisAccessRoute: String, Sendable, CaseIterable {
    /// The NodePort route when it answers from here, else a port-forward.
    case auto
    /// The Service's NodePort (or a run-owned NodePort twin) on a node's InternalIP, only.
    case nodePort = "node-port"
    /// A port-forward to the Redis pod through the API server, only: no NodePort twin is created.
    case portForward = "port-forward"
}

/// Reaches the Redis the exporter writes to from outside the cluster, wherever the manifests put it.
///
/// The Service comes from the exporter's own env (`REDIS_HOST`, `REDIS_PORT`) on the app workload's pod template.
/// A NodePort Service is used as it is. A ClusterIP-only Service (the usual shape) gets a run-owned twin of type
/// NodePort with the same selector and target port, created in the run namespace, so it goes with the namespace at
/// cleanup. Decision: a NodePort first — no stream through the API server for every audit command, and it works the
/// same on kind, k3d and the sim, where node addresses are reachable from the host (Linux). Where they are not
/// (Docker Desktop), or with `--redis-access port-forward`, a port-forward to the Service's pod (`podPort(for:)`)
/// through `KubeAPI.withPortForward` reaches it instead.
public struct RedisAccess: Sendable {
    public var api: any KubeAPI
    public var namespace: String

    public init(api: any KubeAPI, namespace: String) {
        self.api = api
        self.namespace = namespace
    }

    /// Where the exporter says Redis is.
    public struct Declared: Sendable, Hashable {
        /// The Service name (a `name.ns.svc…` host reduced to its first label).
        public var service: String
        public var port: Int
    }

    /// `REDIS_HOST`/`REDIS_PORT` of the first container that has `REDIS_HOST` in the workload's pod template.
    public static func declared(inWorkload object: JSONValue) -> Declared? {
        let template = object.value(at: ["spec", "template", "spec"])
        let containers = (template?["containers"]?.arrayValue ?? []) + (template?["initContainers"]?.arrayValue ?? [])
        for container in containers {
            let env = container["env"]?.arrayValue ?? []
            func value(_ name: String) -> String? { env.first { $0["name"]?.stringValue == name }?["value"]?.stringValue }
            if let declared = declared(host: value("REDIS_HOST"), port: value("REDIS_PORT")) { return declared }
        }
        return nil
    }

    /// `REDIS_HOST`/`REDIS_PORT` of effective exporter settings (`ExporterConfig`, the YAML's included).
    public static func declared(settings: [String: String]) -> Declared? {
        declared(host: settings["REDIS_HOST"], port: settings["REDIS_PORT"])
    }

    /// The Service a `REDIS_HOST` value names (its first label), on `REDIS_PORT` (default 6379); nil for no host or
    /// one with an unexpanded `$(VAR)`.
    static func declared(host: String?, port: String?) -> Declared? {
        guard let host, !host.isEmpty, !host.contains("$(") else { return nil }
        return Declared(service: String(host.split(separator: ".").first ?? Substring(host)), port: port.flatMap { Int($0) } ?? 6379)
    }

    /// A Ready pod behind `declared`'s Service and the container port its target port names (a number, or a port
    /// name looked up in the pod), for a port-forward. Without a declared Service, the pods labelled `app=redis`.
    /// - Throws: `KubeError(.notFound)` when the Service does not exist or selects no Ready pod.
    public func podPort(for declared: Declared?) async throws -> (pod: String, port: Int, via: String) {
        var selector = "app=redis"
        var target: JSONValue = .number(Double(declared?.port ?? 6379))
        if let declared {
            let service = try await service(declared)
            let pairs = (service.value(at: ["spec", "selector"])?.objectValue ?? [:]).compactMap { key, value in value.stringValue.map { "\(key)=\($0)" } }
            guard !pairs.isEmpty else {
                throw KubeError(.invalid, "Service \(declared.service) has no selector, so no pod to port-forward to; pass --redis-addr")
            }
            selector = pairs.sorted().joined(separator: ",")
            let ports = service.value(at: ["spec", "ports"])?.arrayValue ?? []
            let entry = ports.first { $0["port"]?.intValue == declared.port } ?? ports.first
            if let targetPort = entry?["targetPort"] { target = targetPort }
        }
        let pods = try await api.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: selector)).filter(\.isReady)
        guard let pod = pods.first, let name = pod.metadata.name else {
            throw KubeError(.notFound, "no Ready pod matches \(selector) in namespace \(namespace) to port-forward to Redis")
        }
        let port: Int
        if let number = target.intValue {
            port = number
        } else if let portName = target.stringValue,
                  let named = pod.spec?.containers.flatMap({ $0.ports ?? [] }).first(where: { $0.name == portName })?.containerPort {
            port = named
        } else {
            throw KubeError(.invalid, "pod \(name) has no container port named \(target.stringValue ?? "?") (the Service's targetPort)")
        }
        return (name, port, "port-forward to pod \(name) port \(port)" + (declared.map { " (behind Service \($0.service))" } ?? ""))
    }

    /// The Service the exporter names. - Throws: `KubeError(.notFound)` saying so when it does not exist.
    private func service(_ declared: Declared) async throws -> JSONValue {
        let data: Data
        do {
            data = try await api.get(.services, name: declared.service, namespace: namespace)
        } catch let error as KubeError where error.code == .notFound {
            throw KubeError(.notFound, "the exporter's REDIS_HOST names Service \(declared.service), which does not exist in namespace "
                + "\(namespace); add the Service to the manifests, or pass --redis-addr")
        }
        return try decodeObject(JSONValue.self, data, what: "Service \(declared.service)")
    }

    /// The name of the run-owned NodePort twin of `service`.
    public static func twinName(of service: String) -> String { String("\(service)-kverify-access".prefix(63)) }

    /// The node port that reaches `declared`: the Service's own, else its run-owned NodePort twin's.
    /// - Throws: `KubeError(.notFound)` naming the Service when it does not exist; other API errors as they come.
    public func nodePort(for declared: Declared) async throws -> (port: Int, via: String, created: Bool) {
        let service = try await service(declared)
        let ports = service.value(at: ["spec", "ports"])?.arrayValue ?? []
        let entry = ports.first { $0["port"]?.intValue == declared.port } ?? ports.first
        if let nodePort = entry?["nodePort"]?.intValue {
            return (nodePort, "NodePort \(nodePort) of Service \(declared.service)", false)
        }
        let targetPort: JSONValue = entry?["targetPort"] ?? .number(Double(declared.port))
        let twin: JSONValue = [
            "apiVersion": "v1", "kind": "Service",
            "metadata": ["name": .string(Self.twinName(of: declared.service)), "namespace": .string(namespace),
                         "labels": ["app.kubernetes.io/managed-by": "kverify"]],
            "spec": ["type": "NodePort", "selector": service.value(at: ["spec", "selector"]) ?? [:],
                     "ports": [["name": "redis", "port": .number(Double(declared.port)), "targetPort": targetPort]]],
        ]
        let stored = try decodeObject(JSONValue.self, try await api.apply(twin, resource: .services, fieldManager: "kverify", force: true),
                                      what: "Service \(Self.twinName(of: declared.service))")
        guard let nodePort = stored.value(at: ["spec", "ports"])?.arrayValue?.first?["nodePort"]?.intValue else {
            throw KubeError(.invalid, "the cluster allocated no nodePort to Service \(Self.twinName(of: declared.service))")
        }
        return (nodePort, "NodePort \(nodePort) of Service \(Self.twinName(of: declared.service)), kverify's twin of ClusterIP Service \(declared.service)",
                true)
    }
}
