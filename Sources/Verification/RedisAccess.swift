import Foundation
import KubeClient
import KubeModel

/// Reaches the Redis the exporter writes to from outside the cluster, wherever the manifests put it.
///
/// The Service comes from the exporter's own env (`REDIS_HOST`, `REDIS_PORT`) on the app workload's pod template.
/// A NodePort Service is used as it is. A ClusterIP-only Service (the usual shape) gets a run-owned twin of type
/// NodePort with the same selector and target port, created in the run namespace, so it goes with the namespace at
/// cleanup. Decision: a NodePort twin rather than a port-forward through the API server — it works the same through
/// both backends and on kind, k3d and the sim, where node addresses are reachable from the host (Linux); on Docker
/// Desktop, `--redis-addr` with a port mapping remains the way.
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

    /// The name of the run-owned NodePort twin of `service`.
    public static func twinName(of service: String) -> String { String("\(service)-kverify-access".prefix(63)) }

    /// The node port that reaches `declared`: the Service's own, else its run-owned NodePort twin's.
    /// - Throws: `KubeError(.notFound)` naming the Service when it does not exist; other API errors as they come.
    public func nodePort(for declared: Declared) async throws -> (port: Int, via: String, created: Bool) {
        let data: Data
        do {
            data = try await api.get(.services, name: declared.service, namespace: namespace)
        } catch let error as KubeError where error.code == .notFound {
            throw KubeError(.notFound, "the exporter's REDIS_HOST names Service \(declared.service), which does not exist in namespace "
                + "\(namespace); add the Service to the manifests, or pass --redis-addr")
        }
        let service = try decodeObject(JSONValue.self, data, what: "Service \(declared.service)")
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
