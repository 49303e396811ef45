import Foundation
import SimStore
import KubeModel

/// PersistentVolumeClaims as kind's local-path provisioner serves them (StorageClass `standard`,
/// `volumeBindingMode: WaitForFirstConsumer`, `reclaimPolicy: Delete`):
///
/// - a claim stays `Pending` until the scheduler places the first pod that uses it;
/// - then a PersistentVolume `pvc-<claim uid>` is provisioned on that pod's node (node affinity to its hostname,
///   `Provisioning`/`ProvisioningSucceeded` events) and the claim is `Bound` to it;
/// - from then on every pod of the claim must go to that node ("volume node affinity conflict" elsewhere), so the
///   data (a directory per volume, `PodEnvironment.volumeDirectory`) survives pod restarts and replacements;
/// - a pod whose claim is missing, being deleted, or of a class that does not exist is unschedulable, in the real
///   scheduler's words;
/// - once its claim is gone the volume is deleted (reclaim policy Delete).
///
/// Not modelled: the `kubernetes.io/pvc-protection` finalizer (a claim in use is deleted at once), capacity, and
/// access modes beyond recording them.
package enum VolumeBinding {
    static let claims = ResourceCatalog.persistentVolumeClaims
    static let volumes = ResourceCatalog.persistentVolumes
    static let classes = ResourceCatalog.storageClasses
    static let provisioner = "rancher.io/local-path"

    /// What the pod's claims allow: a reason no node can take it (the scheduler's PreFilter words), or the node its
    /// bound volumes are pinned to.
    struct Placement {
        var problem: String?
        var node: String?
    }

    static func claimNames(of pod: JSONValue) -> [String] {
        (pod.value(at: ["spec", "volumes"])?.arrayValue ?? []).compactMap { $0.value(at: ["persistentVolumeClaim", "claimName"])?.stringValue }
    }

    static func placement(of pod: JSONValue, store: ObjectStore) -> Placement {
        let namespace = pod.string(at: "metadata", "namespace")
        var placement = Placement()
        for name in claimNames(of: pod) {
            guard let claim = try? store.get(claims, namespace: namespace, name: name) else {
                return Placement(problem: "persistentvolumeclaim \"\(name)\" not found")
            }
            if claim.string(at: "metadata", "deletionTimestamp") != nil {
                return Placement(problem: "persistentvolumeclaim \"\(name)\" is being deleted")
            }
            if let volumeName = claim.string(at: "spec", "volumeName"), !volumeName.isEmpty {
                guard let volume = try? store.get(volumes, namespace: nil, name: volumeName) else {
                    return Placement(problem: "persistentvolumeclaim \"\(name)\" bound to non-existent persistentvolume \"\(volumeName)\"")
                }
                placement.node = pinnedNode(of: volume) ?? placement.node
            } else {
                let className = claim.string(at: "spec", "storageClassName") ?? ""
                if (try? store.get(classes, namespace: nil, name: className)) == nil {
                    return Placement(problem: "storageclass.storage.k8s.io \"\(className)\" not found")
                }
            }
        }
        return placement
    }

    /// The hostname a local volume's node affinity requires.
    static func pinnedNode(of volume: JSONValue) -> String? {
        let terms = volume.value(at: ["spec", "nodeAffinity", "required", "nodeSelectorTerms"])?.arrayValue ?? []
        for term in terms {
            for expression in term["matchExpressions"]?.arrayValue ?? []
            where expression["key"]?.stringValue == "kubernetes.io/hostname" && expression["operator"]?.stringValue == "In" {
                return expression["values"]?.arrayValue?.first?.stringValue
            }
        }
        return nil
    }

    /// After the scheduler placed `pod` on `node`: provisions a volume there for each of its claims still Pending,
    /// and binds the claim to it.
    static func provision(for pod: JSONValue, on node: String, store: ObjectStore, events: EventRecorder) {
        let namespace = pod.string(at: "metadata", "namespace") ?? ""
        for name in claimNames(of: pod) {
            guard let claim = try? store.get(claims, namespace: namespace, name: name),
                  (claim.string(at: "spec", "volumeName") ?? "").isEmpty, let uid = claim.string(at: "metadata", "uid") else { continue }
            let volumeName = "pvc-\(uid)"
            let className = claim.string(at: "spec", "storageClassName") ?? "standard"
            let accessModes = claim.value(at: ["spec", "accessModes"]) ?? ["ReadWriteOnce"]
            let capacity = claim.value(at: ["spec", "resources", "requests", "storage"]) ?? "1Gi"
            events.record(claim, reason: "Provisioning", message: "External provisioner is provisioning volume for claim \"\(namespace)/\(name)\"",
                          component: "\(provisioner)_local-path-provisioner")
            let volume: JSONValue = [
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": ["name": .string(volumeName), "annotations": [
                    "pv.kubernetes.io/provisioned-by": .string(provisioner), "local.path.provisioner/selected-node": .string(node),
                ]],
                "spec": [
                    "accessModes": accessModes, "capacity": ["storage": capacity],
                    "claimRef": ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": .string(name), "namespace": .string(namespace),
                                 "uid": .string(uid)],
                    "hostPath": ["path": .string("/var/local-path-provisioner/\(volumeName)_\(namespace)_\(name)"), "type": "DirectoryOrCreate"],
                    "nodeAffinity": ["required": ["nodeSelectorTerms": [["matchExpressions": [
                        ["key": "kubernetes.io/hostname", "operator": "In", "values": [.string(node)]],
                    ]]]]],
                    "persistentVolumeReclaimPolicy": "Delete", "storageClassName": .string(className), "volumeMode": "Filesystem",
                ],
                "status": ["phase": "Bound"],
            ]
            do {
                _ = try store.create(volumes, namespace: nil, body: volume, manager: "local-path-provisioner")
            } catch {
                events.record(claim, type: "Warning", reason: "ProvisioningFailed", message: "failed to provision volume: \(error)",
                              component: "\(provisioner)_local-path-provisioner")
                continue
            }
            store.modify(claims, namespace: namespace, name: name, manager: "kube-controller-manager") { current in
                var bound = current
                for (key, value) in [("pv.kubernetes.io/bind-completed", "yes"), ("pv.kubernetes.io/bound-by-controller", "yes"),
                                     ("volume.beta.kubernetes.io/storage-provisioner", provisioner),
                                     ("volume.kubernetes.io/storage-provisioner", provisioner), ("volume.kubernetes.io/selected-node", node)] {
                    bound.set(["metadata", "annotations", key], to: .string(value))
                }
                bound.set(["spec", "volumeName"], to: .string(volumeName))
                bound.set(["status", "phase"], to: "Bound")
                bound.set(["status", "accessModes"], to: accessModes)
                bound.set(["status", "capacity"], to: ["storage": capacity])
                return bound
            }
            events.record(claim, reason: "ProvisioningSucceeded", message: "Successfully provisioned volume \(volumeName)",
                          component: "\(provisioner)_local-path-provisioner")
        }
    }

    /// Deletes every provisioned volume whose claim is gone (or was replaced by another of the same name).
    static func reclaim(store: ObjectStore) {
        for volume in store.list(volumes, namespace: nil).items {
            guard let name = volume.string(at: "metadata", "name"), let claimName = volume.string(at: "spec", "claimRef", "name"),
                  volume.string(at: "spec", "persistentVolumeReclaimPolicy") == "Delete" else { continue }
            let claim = try? store.get(claims, namespace: volume.string(at: "spec", "claimRef", "namespace"), name: claimName)
            if claim?.string(at: "metadata", "uid") != volume.string(at: "spec", "claimRef", "uid") {
                // Not found: already deleted by someone else, which is the goal.
                _ = try? store.delete(volumes, namespace: nil, name: name)
            }
        }
    }
}
