import Foundation
import KubeModel

/// Pod-spec lookups shared by the API server (proxy to `pod:port`) and the node's kube-proxy (named targetPorts).
package enum PodPorts {
    /// A port given as a number or as the name of one of the pod's container ports.
    /// - Throws: `APIError` 400 naming the port when the pod has no port of that name.
    package static func containerPort(_ text: String, in pod: JSONValue) throws -> Int? {
        if text.isEmpty { return nil }
        if let number = Int(text), (1...65535).contains(number) { return number }
        let ports = (pod.value(at: ["spec", "containers"])?.arrayValue ?? []).flatMap { $0["ports"]?.arrayValue ?? [] }
        guard let port = ports.first(where: { $0["name"]?.stringValue == text })?["containerPort"]?.intValue else {
            throw APIError.badRequest("no port named \"\(text)\" in pod \(pod.string(at: "metadata", "name") ?? "")")
        }
        return port
    }
}
