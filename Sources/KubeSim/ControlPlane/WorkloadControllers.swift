import Foundation
import SimStore
import KubeModel

/// The Deployment and ReplicaSet controllers, reduced to what rollouts of kverify's manifests exercise:
/// a Deployment owns one ReplicaSet per pod template (`<name>-<pod-template-hash>`), the newest scaled to
/// `replicas`, older ones scaled down as new pods become available within `maxUnavailable`; a ReplicaSet keeps
/// `replicas` pods. Status fields and the Available/Progressing conditions are set as the real controllers set them,
/// including `ProgressDeadlineExceeded`.
package enum WorkloadControllers {
    static let deployments = ResourceCatalog.find(group: "apps", version: "v1", plural: "deployments")!
    static let replicaSets = ResourceCatalog.find(group: "apps", version: "v1", plural: "replicasets")!
    static let pods = ResourceCatalog.all[2]
    static let manager = "kube-controller-manager"

    static func owned(_ items: [JSONValue], by uid: String) -> [JSONValue] {
        items.filter { ($0.value(at: ["metadata", "ownerReferences"])?.arrayValue ?? []).contains { $0["uid"]?.stringValue == uid } }
    }

    static func isReady(_ pod: JSONValue) -> Bool { Controllers.isReady(pod) }

    /// FNV-1a of the template's canonical JSON, as a short hex label value.
    static func templateHash(_ template: JSONValue) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in template.data { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        return String(String(hash, radix: 16).prefix(10))
    }

    /// `maxUnavailable` as a count ("25%" of replicas rounds down; at least 1 when maxSurge is 0).
    static func resolve(_ value: JSONValue?, of replicas: Int, roundUp: Bool) -> Int {
        if let number = value?.intValue { return number }
        if let text = value?.stringValue, text.hasSuffix("%"), let percent = Double(text.dropLast()) {
            let exact = Double(replicas) * percent / 100
            return Int(roundUp ? exact.rounded(.up) : exact.rounded(.down))
        }
        return 0
    }

    static func reconcileDeployment(_ deployment: JSONValue, store: ObjectStore, events: EventRecorder? = nil) {
        guard let name = deployment.string(at: "metadata", "name"), let namespace = deployment.string(at: "metadata", "namespace"),
              let uid = deployment.string(at: "metadata", "uid"), deployment.string(at: "metadata", "deletionTimestamp") == nil,
              var template = deployment.value(at: ["spec", "template"]) else { return }
        let generation = deployment.value(at: ["metadata", "generation"])?.intValue ?? 1
        let replicas = deployment.value(at: ["spec", "replicas"])?.intValue ?? 1
        let hash = templateHash(template)
        template.set(["metadata", "labels", "pod-template-hash"], to: .string(hash))
        let sets = owned(store.list(replicaSets, namespace: namespace).items, by: uid)
        let newName = "\(name)-\(hash)"
        var selector = deployment.value(at: ["spec", "selector"]) ?? [:]
        selector.set(["matchLabels", "pod-template-hash"], to: .string(hash))
        let revision = (sets.compactMap { Int($0.string(at: "metadata", "annotations", "deployment.kubernetes.io/revision") ?? "") }.max() ?? 0)
        if !sets.contains(where: { $0.string(at: "metadata", "name") == newName }) {
            var labels = template.value(at: ["metadata", "labels"]) ?? [:]
            labels.set(["pod-template-hash"], to: .string(hash))
            let replicaSet: JSONValue = [
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": ["name": .string(newName), "labels": labels,
                             "annotations": ["deployment.kubernetes.io/revision": .string(String(revision + 1)),
                                             "deployment.kubernetes.io/desired-replicas": .number(Double(replicas)).stringified],
                             "ownerReferences": [["apiVersion": "apps/v1", "kind": "Deployment", "name": .string(name), "uid": .string(uid),
                                                  "controller": true, "blockOwnerDeletion": true]]],
                "spec": ["replicas": .number(Double(replicas)), "selector": selector, "template": template],
            ]
            do {
                try store.create(replicaSets, namespace: namespace, body: replicaSet, manager: manager)
            } catch {
                events?.record(deployment, type: "Warning", reason: "FailedCreate", message: "Error creating: \(error)",
                               component: "deployment-controller")
            }
        } else {
            store.modify(replicaSets, namespace: namespace, name: newName, manager: manager) { current in
                var changed = current
                changed.set(["spec", "replicas"], to: .number(Double(replicas)))
                return changed
            }
        }
        let current = owned(store.list(replicaSets, namespace: namespace).items, by: uid)
        let newSet = current.first { $0.string(at: "metadata", "name") == newName }
        let newAvailable = newSet?.value(at: ["status", "availableReplicas"])?.intValue ?? 0
        let maxSurge = resolve(deployment.value(at: ["spec", "strategy", "rollingUpdate", "maxSurge"]), of: replicas, roundUp: true)
        var maxUnavailable = resolve(deployment.value(at: ["spec", "strategy", "rollingUpdate", "maxUnavailable"]), of: replicas, roundUp: false)
        if maxSurge == 0 && maxUnavailable == 0 { maxUnavailable = 1 }
        let recreate = deployment.string(at: "spec", "strategy", "type") == "Recreate"
        for old in current where old.string(at: "metadata", "name") != newName {
            let have = old.value(at: ["spec", "replicas"])?.intValue ?? 0
            let target = recreate ? 0 : max(0, min(have, replicas - maxUnavailable - newAvailable))
            guard target != have, let oldName = old.string(at: "metadata", "name") else { continue }
            store.modify(replicaSets, namespace: namespace, name: oldName, manager: manager) { current in
                var changed = current
                changed.set(["spec", "replicas"], to: .number(Double(target)))
                return changed
            }
        }
        let all = owned(store.list(replicaSets, namespace: namespace).items, by: uid)
        func sum(_ field: String) -> Int { all.reduce(0) { $0 + ($1.value(at: ["status", field])?.intValue ?? 0) } }
        let updated = newSet?.value(at: ["status", "replicas"])?.intValue ?? 0
        let total = sum("replicas"), ready = sum("readyReplicas"), available = sum("availableReplicas")
        let complete = updated == replicas && total == replicas && available == replicas
        let now = ObjectStore.now()
        let previous = deployment.value(at: ["status"]) ?? [:]
        let progressChanged = previous["updatedReplicas"]?.intValue != updated || previous["readyReplicas"]?.intValue != ready
            || previous["availableReplicas"]?.intValue != available || previous["observedGeneration"]?.intValue != generation
        let previousProgressing = (previous["conditions"]?.arrayValue ?? []).first { $0["type"] == "Progressing" }
        let lastProgress = progressChanged ? now : previousProgressing?["lastUpdateTime"]?.stringValue ?? now
        let deadline = deployment.value(at: ["spec", "progressDeadlineSeconds"])?.intValue ?? 600
        let stalled = !complete && (ObjectStore.parseTime(lastProgress).map { Date().timeIntervalSince($0) > Double(deadline) } ?? false)
        func condition(_ type: String, _ status: Bool, _ reason: String, _ message: String, since: String) -> JSONValue {
            let old = (previous["conditions"]?.arrayValue ?? []).first { $0["type"]?.stringValue == type }
            let statusText = status ? "True" : "False"
            let transition = old?["status"]?.stringValue == statusText ? old?["lastTransitionTime"] ?? .string(now) : .string(now)
            return ["type": .string(type), "status": .string(statusText), "reason": .string(reason), "message": .string(message),
                    "lastUpdateTime": .string(since), "lastTransitionTime": transition]
        }
        let minimumAvailable = available >= replicas - maxUnavailable
        let progressing: JSONValue
        if complete {
            progressing = condition("Progressing", true, "NewReplicaSetAvailable", "ReplicaSet \"\(newName)\" has successfully progressed.", since: lastProgress)
        } else if stalled {
            progressing = condition("Progressing", false, "ProgressDeadlineExceeded", "ReplicaSet \"\(newName)\" has timed out progressing.", since: lastProgress)
        } else {
            progressing = condition("Progressing", true, "ReplicaSetUpdated", "ReplicaSet \"\(newName)\" is progressing.", since: lastProgress)
        }
        var status: JSONValue = [
            "observedGeneration": .number(Double(generation)),
            "conditions": [
                condition("Available", minimumAvailable, minimumAvailable ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                          minimumAvailable ? "Deployment has minimum availability." : "Deployment does not have minimum availability.", since: now),
                progressing,
            ],
        ]
        // Go's omitempty: zero counts are absent, as in the real API.
        for (field, value) in [("replicas", total), ("updatedReplicas", updated), ("readyReplicas", ready), ("availableReplicas", available),
                               ("unavailableReplicas", max(0, replicas - available))] where value > 0 {
            status.set([field], to: .number(Double(value)))
        }
        store.modify(deployments, namespace: namespace, name: name, manager: manager) { current in
            var changed = current
            // Keep the Available condition's update time unless something else changed, so idle passes write nothing.
            if let oldStatus = current["status"], Self.sameIgnoringTimes(oldStatus, status) { return nil }
            changed.set(["status"], to: status)
            return changed
        }
    }

    static func sameIgnoringTimes(_ a: JSONValue, _ b: JSONValue) -> Bool {
        func strip(_ value: JSONValue) -> JSONValue {
            var value = value
            value.set(["conditions"], to: .array((value["conditions"]?.arrayValue ?? []).map { condition in
                var condition = condition
                condition.set(["lastUpdateTime"], to: nil)
                condition.set(["lastTransitionTime"], to: nil)
                return condition
            }))
            return value
        }
        return strip(a) == strip(b)
    }

    static func reconcileReplicaSet(_ set: JSONValue, store: ObjectStore, events: EventRecorder? = nil) {
        guard let name = set.string(at: "metadata", "name"), let namespace = set.string(at: "metadata", "namespace"),
              let uid = set.string(at: "metadata", "uid"), set.string(at: "metadata", "deletionTimestamp") == nil,
              let template = set.value(at: ["spec", "template"]) else { return }
        let replicas = set.value(at: ["spec", "replicas"])?.intValue ?? 1
        var pods = owned(store.list(Self.pods, namespace: namespace).items, by: uid).filter { $0.string(at: "metadata", "deletionTimestamp") == nil }
        if pods.count < replicas {
            for _ in pods.count..<replicas {
                var pod: JSONValue = ["apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"] ?? [:], "spec": template["spec"] ?? [:]]
                pod.set(["metadata", "generateName"], to: .string("\(name)-"))
                pod.set(["metadata", "name"], to: nil)
                pod.set(["metadata", "ownerReferences"], to: [["apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string(name),
                                                                "uid": .string(uid), "controller": true, "blockOwnerDeletion": true]])
                do {
                    pods.append(try store.create(Self.pods, namespace: namespace, body: pod, manager: manager))
                } catch {
                    events?.record(set, type: "Warning", reason: "FailedCreate", message: "Error creating: \(error)",
                                   component: "replicaset-controller")
                }
            }
        } else if pods.count > replicas {
            // Unscheduled, then unready pods go first, as the real controller ranks them.
            let ranked = pods.sorted { rank($0) < rank($1) }
            for pod in ranked.prefix(pods.count - replicas) {
                _ = try? store.delete(Self.pods, namespace: namespace, name: pod.string(at: "metadata", "name") ?? "")  // gone already: fine
            }
            pods = Array(ranked.dropFirst(pods.count - replicas))
        }
        let ready = pods.filter(isReady).count
        var status: JSONValue = ["observedGeneration": .number(Double(set.value(at: ["metadata", "generation"])?.intValue ?? 1)),
                                 "replicas": .number(Double(pods.count))]
        for (field, value) in [("fullyLabeledReplicas", pods.count), ("readyReplicas", ready), ("availableReplicas", ready)] where value > 0 {
            status.set([field], to: .number(Double(value)))
        }
        store.modify(replicaSets, namespace: namespace, name: name, manager: manager) { current in
            var changed = current
            changed.set(["status"], to: status)
            return changed
        }
    }

    private static func rank(_ pod: JSONValue) -> Int {
        if (pod.string(at: "spec", "nodeName") ?? "").isEmpty { return 0 }
        return isReady(pod) ? 2 : 1
    }
}

package extension JSONValue {
    /// A number as the string an annotation holds.
    var stringified: JSONValue {
        if let number = intValue { return .string(String(number)) }
        return self
    }
}

package extension ObjectStore {
    /// Reads a timestamp the store wrote (`ObjectStore.timestamp`) without building an ICU formatter per call (the
    /// controllers read one per pod on every pass); any other RFC 3339 shape goes through `ISO8601DateFormatter`.
    static func parseTime(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        if bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
           bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z") {
            func number(_ range: Range<Int>) -> Int32? {
                var value: Int32 = 0
                for byte in bytes[range] {
                    guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                    value = value * 10 + Int32(byte - UInt8(ascii: "0"))
                }
                return value
            }
            if let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
               let minute = number(14..<16), let second = number(17..<19) {
                var parts = tm()
                parts.tm_year = year - 1900
                parts.tm_mon = month - 1
                parts.tm_mday = day
                parts.tm_hour = hour
                parts.tm_min = minute
                parts.tm_sec = second
                return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
            }
        }
        return ISO8601DateFormatter().date(from: text)
    }
}
