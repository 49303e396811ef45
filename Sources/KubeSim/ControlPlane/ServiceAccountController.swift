import Foundation
import SimStore
import KubeModel

/// The ServiceAccount controller and the root-CA publisher of the real controller manager: every Active namespace
/// gets a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap (the cluster CA that in-cluster clients
/// verify the API server with). Level-triggered like the other loops: a deleted one comes back on the next pass.
package enum ServiceAccountController {
    static let namespaces = ResourceCatalog.all[0]
    static let configMaps = ResourceCatalog.all[5]

    static func reconcile(store: ObjectStore, clusterCA: String?) {
        for namespace in store.list(namespaces, namespace: nil).items where namespace.string(at: "status", "phase") != "Terminating" {
            guard let name = namespace.string(at: "metadata", "name") else { continue }
            if (try? store.get(ResourceCatalog.serviceAccounts, namespace: name, name: "default")) == nil {
                _ = try? store.create(ResourceCatalog.serviceAccounts, namespace: name, body: [
                    "apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "default"],
                ], manager: "kube-controller-manager")
            }
            if let clusterCA, (try? store.get(configMaps, namespace: name, name: "kube-root-ca.crt")) == nil {
                _ = try? store.create(configMaps, namespace: name, body: [
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": ["name": "kube-root-ca.crt", "annotations": ["kubernetes.io/description":
                        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."]],
                    "data": ["ca.crt": .string(clusterCA)],
                ], manager: "kube-controller-manager")
            }
        }
    }
}
