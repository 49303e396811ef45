import Foundation
import KubeModel

/// The defaults the real API server fills in, limited to the fields kubectl and kverify read.
package enum Defaults {
    static func apply(_ resource: ResourceType, to object: inout JSONValue, clusterIP: () -> String) {
        func setIfMissing(_ path: [String], _ value: JSONValue) {
            if object.value(at: path) == nil { object.set(path, to: value) }
        }
        switch resource.plural {
        case "namespaces":
            let name = object.string(at: "metadata", "name") ?? ""
            object.set(["metadata", "labels", "kubernetes.io/metadata.name"], to: .string(name))
            setIfMissing(["spec", "finalizers"], ["kubernetes"])
            setIfMissing(["status", "phase"], "Active")
        case "pods":
            setIfMissing(["spec", "restartPolicy"], "Always")
            setIfMissing(["spec", "dnsPolicy"], "ClusterFirst")
            setIfMissing(["spec", "schedulerName"], "default-scheduler")
            setIfMissing(["spec", "terminationGracePeriodSeconds"], 30)
            setIfMissing(["spec", "serviceAccountName"], "default")
            setIfMissing(["status", "phase"], "Pending")
            setIfMissing(["status", "qosClass"], "BestEffort")
            defaultContainers(&object, ["spec"])
            mountServiceAccountToken(&object)
        case "services":
            setIfMissing(["spec", "type"], "ClusterIP")
            setIfMissing(["spec", "sessionAffinity"], "None")
            if object.string(at: "spec", "clusterIP") == nil {
                let ip = clusterIP()
                object.set(["spec", "clusterIP"], to: .string(ip))
                object.set(["spec", "clusterIPs"], to: [.string(ip)])
            }
            if let ports = object.value(at: ["spec", "ports"])?.arrayValue {
                object.set(["spec", "ports"], to: .array(ports.map { port in
                    var port = port
                    if port["protocol"] == nil { port.set(["protocol"], to: "TCP") }
                    if port["targetPort"] == nil, let number = port["port"] { port.set(["targetPort"], to: number) }
                    return port
                }))
            }
        case "persistentvolumeclaims":
            // The default class `standard` when it names none; Pending until its first pod is scheduled
            // (WaitForFirstConsumer), when `VolumeBinding` provisions and binds it.
            setIfMissing(["spec", "storageClassName"], "standard")
            setIfMissing(["spec", "volumeMode"], "Filesystem")
            setIfMissing(["status", "phase"], "Pending")
        case "daemonsets":
            setIfMissing(["spec", "updateStrategy", "type"], "RollingUpdate")
            if object.string(at: "spec", "updateStrategy", "type") == "RollingUpdate" {
                setIfMissing(["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"], 1)
                setIfMissing(["spec", "updateStrategy", "rollingUpdate", "maxSurge"], 0)
            }
            setIfMissing(["spec", "revisionHistoryLimit"], 10)
            defaultContainers(&object, ["spec", "template", "spec"])
        case "deployments":
            setIfMissing(["spec", "replicas"], 1)
            setIfMissing(["spec", "strategy", "type"], "RollingUpdate")
            if object.string(at: "spec", "strategy", "type") == "RollingUpdate" {
                setIfMissing(["spec", "strategy", "rollingUpdate", "maxUnavailable"], "25%")
                setIfMissing(["spec", "strategy", "rollingUpdate", "maxSurge"], "25%")
            }
            setIfMissing(["spec", "revisionHistoryLimit"], 10)
            setIfMissing(["spec", "progressDeadlineSeconds"], 600)
            defaultContainers(&object, ["spec", "template", "spec"])
        case "replicasets":
            setIfMissing(["spec", "replicas"], 1)
        case "secrets":
            setIfMissing(["type"], "Opaque")
        default:
            break
        }
    }

    /// Where every pod finds its API credentials (client-go's in-cluster config reads exactly this directory).
    package static let serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The ServiceAccount admission plugin: unless `automountServiceAccountToken: false`, a projected volume with
    /// the account's token, the cluster CA (`kube-root-ca.crt`) and the namespace, mounted read-only in every
    /// container that does not mount something there itself.
    static func mountServiceAccountToken(_ pod: inout JSONValue) {
        guard pod.value(at: ["spec", "automountServiceAccountToken"]) != .bool(false) else { return }
        let volumes = pod.value(at: ["spec", "volumes"])?.arrayValue ?? []
        if volumes.contains(where: { ($0["name"]?.stringValue ?? "").hasPrefix("kube-api-access-") }) { return }
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        let name = "kube-api-access-" + String((0..<5).map { _ in alphabet.randomElement()! })
        let volume: JSONValue = ["name": .string(name), "projected": ["defaultMode": 420, "sources": [
            ["serviceAccountToken": ["expirationSeconds": 3607, "path": "token"]],
            ["configMap": ["name": "kube-root-ca.crt", "items": [["key": "ca.crt", "path": "ca.crt"]]]],
            ["downwardAPI": ["items": [["fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"], "path": "namespace"]]]],
        ]]]
        pod.set(["spec", "volumes"], to: .array(volumes + [volume]))
        for field in ["initContainers", "containers"] {
            guard let containers = pod.value(at: ["spec", field])?.arrayValue else { continue }
            pod.set(["spec", field], to: .array(containers.map { container in
                let mounts = container["volumeMounts"]?.arrayValue ?? []
                guard !mounts.contains(where: { $0["mountPath"]?.stringValue == serviceAccountMountPath }) else { return container }
                var container = container
                container.set(["volumeMounts"], to: .array(mounts + [
                    ["name": .string(name), "mountPath": .string(serviceAccountMountPath), "readOnly": true],
                ]))
                return container
            }))
        }
    }

    private static func defaultContainers(_ object: inout JSONValue, _ specPath: [String]) {
        for field in ["containers", "initContainers"] {
            guard let containers = object.value(at: specPath + [field])?.arrayValue else { continue }
            object.set(specPath + [field], to: .array(containers.map { container in
                var container = container
                if container["imagePullPolicy"] == nil {
                    let image = container["image"]?.stringValue ?? ""
                    container.set(["imagePullPolicy"], to: image.hasSuffix(":latest") || !image.contains(":") ? "Always" : "IfNotPresent")
                }
                if container["terminationMessagePath"] == nil { container.set(["terminationMessagePath"], to: "/dev/termination-log") }
                if container["terminationMessagePolicy"] == nil { container.set(["terminationMessagePolicy"], to: "File") }
                return container
            }))
        }
    }
}
