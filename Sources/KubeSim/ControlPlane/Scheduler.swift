import Foundation
import SimStore
import KubeModel

/// The sim's scheduler: binds each pending pod without `spec.nodeName` to a feasible node (Ready, schedulable,
/// taints tolerated, nodeSelector matched, required pod anti-affinity and DoNotSchedule topology spread on any
/// topology key honoured, its claims' volumes on the node — `VolumeBinding`), preferring the node with the fewest
/// pods. When nothing fits the pod gets `PodScheduled=False, reason Unschedulable` and a `FailedScheduling` event
/// worded as the real scheduler's.
package enum Scheduler {
    static let pods = ResourceCatalog.all[2]
    static let nodes = ResourceCatalog.all[1]

    static func run(_ store: ObjectStore, events: EventRecorder) {
        let nodes = store.list(Self.nodes, namespace: nil).items
        var pods = store.list(Self.pods, namespace: nil).items
        for (index, pod) in pods.enumerated() {
            // A pod its maker placed itself (the DaemonSet controller sets nodeName) gets its claims bound there.
            if let placed = pod.string(at: "spec", "nodeName"), !placed.isEmpty {
                if pod.string(at: "metadata", "deletionTimestamp") == nil { VolumeBinding.provision(for: pod, on: placed, store: store, events: events) }
                continue
            }
            guard pod.string(at: "metadata", "deletionTimestamp") == nil,
                  (pod.string(at: "spec", "schedulerName") ?? "default-scheduler") == "default-scheduler",
                  let name = pod.string(at: "metadata", "name"), let namespace = pod.string(at: "metadata", "namespace") else { continue }
            let assigned = pods.filter { !($0.string(at: "spec", "nodeName") ?? "").isEmpty && $0.string(at: "status", "phase") != "Succeeded"
                && $0.string(at: "status", "phase") != "Failed" }
            var reasons: [String: Int] = [:]
            var feasible: [JSONValue] = []
            let volumes = VolumeBinding.placement(of: pod, store: store)
            if let problem = volumes.problem {
                let message = "0/\(nodes.count) nodes are available: \(problem). preemption: 0/\(nodes.count) nodes are available: \(nodes.count) Preemption is not helpful for scheduling."
                markUnschedulable(pod, message: message, store: store, events: events)
                continue
            }
            for node in nodes {
                if let pinned = volumes.node, node.string(at: "metadata", "name") != pinned {
                    reasons["node(s) had volume node affinity conflict", default: 0] += 1
                } else if let reason = rejection(pod, on: node, nodes: nodes, assigned: assigned) {
                    reasons[reason, default: 0] += 1
                } else {
                    feasible.append(node)
                }
            }
            let load = Dictionary(grouping: assigned, by: { $0.string(at: "spec", "nodeName") ?? "" }).mapValues(\.count)
            if let chosen = feasible.min(by: { (load[$0.string(at: "metadata", "name") ?? ""] ?? 0, $0.string(at: "metadata", "name") ?? "")
                < (load[$1.string(at: "metadata", "name") ?? ""] ?? 0, $1.string(at: "metadata", "name") ?? "") }),
               let nodeName = chosen.string(at: "metadata", "name") {
                // As the real VolumeBinding plugin's PreBind: the claims are bound before the pod is, so the kubelet
                // never sees the pod with a claim still Pending.
                VolumeBinding.provision(for: pod, on: nodeName, store: store, events: events)
                let bound = store.modify(Self.pods, namespace: namespace, name: name, manager: "kube-scheduler") { current in
                    guard (current.string(at: "spec", "nodeName") ?? "").isEmpty else { return nil }
                    var changed = current
                    changed.set(["spec", "nodeName"], to: .string(nodeName))
                    setCondition(&changed, ["type": "PodScheduled", "status": "True", "lastProbeTime": .null,
                                            "lastTransitionTime": .string(ObjectStore.now())])
                    return changed
                }
                if let bound {
                    pods[index] = bound
                    events.record(bound, reason: "Scheduled", message: "Successfully assigned \(namespace)/\(name) to \(nodeName)",
                                  component: "default-scheduler")
                }
            } else {
                let parts = reasons.sorted { ($0.value, $0.key) > ($1.value, $1.key) }.map { "\($0.value) \($0.key)" }
                let message = "0/\(nodes.count) nodes are available: \(parts.joined(separator: ", ")). preemption: 0/\(nodes.count) nodes are available: \(nodes.count) Preemption is not helpful for scheduling."
                markUnschedulable(pod, message: message, store: store, events: events)
            }
        }
    }

    /// `PodScheduled=False, Unschedulable` with the scheduler's message, and its `FailedScheduling` event.
    static func markUnschedulable(_ pod: JSONValue, message: String, store: ObjectStore, events: EventRecorder) {
        guard let name = pod.string(at: "metadata", "name"), let namespace = pod.string(at: "metadata", "namespace") else { return }
        store.modify(Self.pods, namespace: namespace, name: name, manager: "kube-scheduler") { current in
            let existing = (current.value(at: ["status", "conditions"])?.arrayValue ?? []).first { $0["type"] == "PodScheduled" }
            if existing?["message"]?.stringValue == message { return nil }
            var changed = current
            setCondition(&changed, ["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": .string(message),
                                    "lastProbeTime": .null, "lastTransitionTime": existing?["lastTransitionTime"] ?? .string(ObjectStore.now())])
            return changed
        }
        events.record(pod, type: "Warning", reason: "FailedScheduling", message: message, component: "default-scheduler")
    }

    /// Replaces the pod's condition of the same type, keeping the others (a kubelet or a test may have set them).
    static func setCondition(_ pod: inout JSONValue, _ condition: JSONValue) {
        var conditions = (pod.value(at: ["status", "conditions"])?.arrayValue ?? []).filter { $0["type"] != condition["type"] }
        conditions.append(condition)
        pod.set(["status", "conditions"], to: .array(conditions))
    }

    /// Why `pod` cannot go to `node`, in the scheduler's words; nil when it can.
    static func rejection(_ pod: JSONValue, on node: JSONValue, nodes: [JSONValue], assigned: [JSONValue]) -> String? {
        let ready = (node.value(at: ["status", "conditions"])?.arrayValue ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
        let tolerations = pod.value(at: ["spec", "tolerations"])?.arrayValue ?? []
        if !ready, !Controllers.tolerates(tolerations, ["key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"]) {
            return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
        }
        if node.value(at: ["spec", "unschedulable"]) == .bool(true) { return "node(s) were unschedulable" }
        for taint in node.value(at: ["spec", "taints"])?.arrayValue ?? [] where !Controllers.tolerates(tolerations, taint) {
            return "node(s) had untolerated taint {\(taint["key"]?.stringValue ?? ""): \(taint["value"]?.stringValue ?? "")}"
        }
        let selector = (pod.value(at: ["spec", "nodeSelector"])?.objectValue ?? [:]).compactMapValues(\.stringValue)
        let nodeLabels = ObjectStore.labels(of: node)
        if !selector.allSatisfy({ nodeLabels[$0.key] == $0.value }) { return "node(s) didn't match Pod's node affinity/selector" }
        let namespace = pod.string(at: "metadata", "namespace")
        let podLabels = ObjectStore.labels(of: pod)
        func domain(_ node: JSONValue?, _ key: String) -> String? { node.map(ObjectStore.labels(of:))?[key] }
        func nodeNamed(_ name: String?) -> JSONValue? { nodes.first { $0.string(at: "metadata", "name") == name } }
        for term in pod.value(at: ["spec", "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"])?.arrayValue ?? [] {
            let key = term["topologyKey"]?.stringValue ?? "kubernetes.io/hostname"
            guard let here = domain(node, key), let query = LabelQuery(selector: term["labelSelector"]) else { continue }
            let clash = assigned.contains { other in
                other.string(at: "metadata", "namespace") == namespace && query.matches(ObjectStore.labels(of: other))
                    && domain(nodeNamed(other.string(at: "spec", "nodeName")), key) == here
            }
            if clash { return "node(s) didn't match pod anti-affinity rules" }
        }
        for constraint in pod.value(at: ["spec", "topologySpreadConstraints"])?.arrayValue ?? []
        where constraint["whenUnsatisfiable"]?.stringValue != "ScheduleAnyway" {
            let key = constraint["topologyKey"]?.stringValue ?? "kubernetes.io/hostname"
            let maxSkew = constraint["maxSkew"]?.intValue ?? 1
            guard let here = domain(node, key) else { return "node(s) didn't match pod topology spread constraints (missing required label)" }
            let query = LabelQuery(selector: constraint["labelSelector"]) ?? LabelQuery(matchLabels: podLabels)
            // Domains are those of nodes the pod could otherwise use (selector and taints), as the real plugin counts them.
            let eligible = nodes.filter { candidate in
                let labels = ObjectStore.labels(of: candidate)
                return selector.allSatisfy { labels[$0.key] == $0.value }
                    && (candidate.value(at: ["spec", "taints"])?.arrayValue ?? []).allSatisfy { Controllers.tolerates(tolerations, $0) }
            }
            var counts: [String: Int] = [:]
            for candidate in eligible { if let value = domain(candidate, key) { counts[value] = 0 } }
            // Terminating pods do not count, as the real plugin skips them (kubernetes#87621): a Deployment's replacement
            // goes where its deleted pod was.
            for other in assigned where other.string(at: "metadata", "namespace") == namespace && query.matches(ObjectStore.labels(of: other))
                && other.string(at: "metadata", "deletionTimestamp") == nil {
                if let value = domain(nodeNamed(other.string(at: "spec", "nodeName")), key), counts[value] != nil { counts[value, default: 0] += 1 }
            }
            let minimum = counts.values.min() ?? 0
            if (counts[here] ?? 0) + 1 - minimum > maxSkew { return "node(s) didn't match pod topology spread constraints" }
        }
        return nil
    }

}
