import Findings
import Foundation
import KubeModel

/// One app+exporter pod of a run: where it runs and which Redis key prefix its workers write under.
public struct PodTarget: Sendable, Hashable, Codable {
    public var pod: String
    public var node: String
    /// `REDIS_KEY_PREFIX` as the pod sees it (`gunicorn-$(POD_NAME)` expanded); nil when the pod sets none.
    public var keyPrefix: String?
    /// Where its exporter and app answer, and which rule found them (`EndpointDiscovery`).
    public var endpoints: PodEndpoints

    public init(pod: String, node: String, keyPrefix: String?, endpoints: PodEndpoints = .conventional) {
        self.pod = pod
        self.node = node
        self.keyPrefix = keyPrefix
        self.endpoints = endpoints
    }

    /// `node/<node> pod/<pod>`, the subject prefix of every per-pod finding.
    public var subject: String { "node/\(node) pod/\(pod)" }

    /// A finding of a check that ran against this pod, placed on it (subject text and structured `about`).
    public func scope(_ finding: Finding) -> Finding { finding.scoped(toPod: pod, node: node) }

    /// The app container's `REDIS_KEY_PREFIX` with `$(VAR)` references expanded the way the kubelet does
    /// (from earlier env entries and the downward-API fields kverify's manifests use).
    public static func keyPrefix(podObject: JSONValue, container: String = "app") -> String? {
        let containers = podObject.value(at: ["spec", "containers"])?.arrayValue ?? []
        guard let app = containers.first(where: { $0["name"]?.stringValue == container }) ?? containers.first else { return nil }
        let name = podObject.value(at: ["metadata", "name"])?.stringValue ?? ""
        let fieldValues = [
            "metadata.name": name,
            "metadata.namespace": podObject.value(at: ["metadata", "namespace"])?.stringValue ?? "",
            "spec.nodeName": podObject.value(at: ["spec", "nodeName"])?.stringValue ?? "",
        ]
        var env: [String: String] = [:]
        var prefix: String?
        for entry in app["env"]?.arrayValue ?? [] {
            guard let key = entry["name"]?.stringValue else { continue }
            let value: String
            if let literal = entry["value"]?.stringValue {
                value = EnvExpansion.expand(literal, env)
            } else if let path = entry.value(at: ["valueFrom", "fieldRef", "fieldPath"])?.stringValue, let resolved = fieldValues[path] {
                value = resolved
            } else {
                continue
            }
            env[key] = value
            if key == "REDIS_KEY_PREFIX" { prefix = value }
        }
        guard let prefix else { return nil }
        var trimmed = prefix
        while trimmed.hasSuffix(":") { trimmed.removeLast() }
        return trimmed
    }
}
