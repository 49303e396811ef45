import Foundation
import SimFaults
import SimStore
import KubeModel

/// Server-side printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the columns `kubectl get`
/// shows for the kinds kverify cares about, NAME and AGE for the rest.
package enum Tables {
    static func wanted(_ accept: String) -> Bool { accept.contains("as=Table") }

    static let contentType = "application/json;as=Table;v=v1;g=meta.k8s.io"

    struct Column {
        var name: String
        var type = "string"
        var priority = 0
        var cell: (JSONValue) -> JSONValue
    }

    static func table(_ resource: ResourceType, items: [JSONValue], resourceVersion: Int, includeObject: String?) -> JSONValue {
        let columns = self.columns(resource)
        return [
            "kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": ["resourceVersion": .string(String(resourceVersion))],
            "columnDefinitions": .array(columns.map { column in
                ["name": .string(column.name), "type": .string(column.type), "format": column.name == "Name" ? "name" : "",
                 "description": .string(column.name), "priority": .number(Double(column.priority))]
            }),
            "rows": .array(items.map { item in
                ["cells": .array(columns.map { $0.cell(item) }), "object": rowObject(item, includeObject)]
            }),
        ]
    }

    static func rowObject(_ item: JSONValue, _ includeObject: String?) -> JSONValue {
        switch includeObject {
        case "None": return .null
        case "Object": return item
        default:
            var metadata = item["metadata"] ?? [:]
            metadata.set(["managedFields"], to: nil)
            return ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata]
        }
    }

    static func age(_ object: JSONValue) -> JSONValue {
        guard let text = object.string(at: "metadata", "creationTimestamp"),
              let created = ISO8601DateFormatter().date(from: text) else { return "<unknown>" }
        let seconds = max(0, Int(Date().timeIntervalSince(created)))
        switch seconds {
        case ..<120: return .string("\(seconds)s")
        case ..<(60 * 60): return .string("\(seconds / 60)m")
        case ..<(48 * 3600): return .string("\(seconds / 3600)h")
        default: return .string("\(seconds / 86400)d")
        }
    }

    static func int(_ object: JSONValue, _ path: String...) -> Int { object.value(at: path)?.intValue ?? 0 }

    static func columns(_ resource: ResourceType) -> [Column] {
        let name = Column(name: "Name") { .string($0.string(at: "metadata", "name") ?? "") }
        let ageColumn = Column(name: "Age") { age($0) }
        switch resource.plural {
        case "nodes":
            return [name,
                    Column(name: "Status") { node in
                        let ready = node.value(at: ["status", "conditions"])?.arrayValue?.first { $0["type"] == "Ready" }
                        var status = ready?["status"]?.stringValue == "True" ? "Ready" : "NotReady"
                        if node.value(at: ["spec", "unschedulable"]) == .bool(true) { status += ",SchedulingDisabled" }
                        return .string(status)
                    },
                    Column(name: "Roles") { node in
                        let roles = ObjectStore.labels(of: node).keys.filter { $0.hasPrefix("node-role.kubernetes.io/") }
                            .map { String($0.dropFirst("node-role.kubernetes.io/".count)) }.sorted()
                        return .string(roles.isEmpty ? "<none>" : roles.joined(separator: ","))
                    },
                    ageColumn,
                    Column(name: "Version") { .string($0.string(at: "status", "nodeInfo", "kubeletVersion") ?? "") },
                    Column(name: "Internal-IP", priority: 1) { node in
                        .string(node.value(at: ["status", "addresses"])?.arrayValue?.first { $0["type"] == "InternalIP" }?["address"]?.stringValue ?? "<none>")
                    }]
        case "pods":
            return [name,
                    Column(name: "Ready") { pod in
                        let statuses = pod.value(at: ["status", "containerStatuses"])?.arrayValue ?? []
                        let total = pod.value(at: ["spec", "containers"])?.arrayValue?.count ?? statuses.count
                        return .string("\(statuses.filter { $0["ready"] == .bool(true) }.count)/\(total)")
                    },
                    Column(name: "Status") { pod in
                        if pod.string(at: "metadata", "deletionTimestamp") != nil { return "Terminating" }
                        // As kubectl's printer: an unfinished init container shows as Init:<reason> or Init:done/total.
                        let initStatuses = pod.value(at: ["status", "initContainerStatuses"])?.arrayValue ?? []
                        let initDone = initStatuses.filter { $0.value(at: ["state", "terminated", "exitCode"])?.intValue == 0 }.count
                        if initDone < initStatuses.count {
                            for status in initStatuses {
                                if let reason = status.value(at: ["state", "waiting", "reason"])?.stringValue, reason != "PodInitializing" {
                                    return .string("Init:\(reason)")
                                }
                            }
                            return .string("Init:\(initDone)/\(initStatuses.count)")
                        }
                        let statuses = pod.value(at: ["status", "containerStatuses"])?.arrayValue ?? []
                        for status in statuses {
                            if let reason = status.value(at: ["state", "waiting", "reason"])?.stringValue { return .string(reason) }
                            if let reason = status.value(at: ["state", "terminated", "reason"])?.stringValue { return .string(reason) }
                        }
                        return .string(pod.string(at: "status", "phase") ?? "Pending")
                    },
                    Column(name: "Restarts", type: "string") { pod in
                        let statuses = pod.value(at: ["status", "containerStatuses"])?.arrayValue ?? []
                        return .string(String(statuses.reduce(0) { $0 + ($1["restartCount"]?.intValue ?? 0) }))
                    },
                    ageColumn,
                    Column(name: "IP", priority: 1) { .string($0.string(at: "status", "podIP") ?? "<none>") },
                    Column(name: "Node", priority: 1) { .string($0.string(at: "spec", "nodeName") ?? "<none>") }]
        case "deployments":
            return [name,
                    Column(name: "Ready") { .string("\(int($0, "status", "readyReplicas"))/\(int($0, "spec", "replicas"))") },
                    Column(name: "Up-to-date", type: "integer") { .number(Double(int($0, "status", "updatedReplicas"))) },
                    Column(name: "Available", type: "integer") { .number(Double(int($0, "status", "availableReplicas"))) },
                    ageColumn]
        case "daemonsets":
            return [name,
                    Column(name: "Desired", type: "integer") { .number(Double(int($0, "status", "desiredNumberScheduled"))) },
                    Column(name: "Current", type: "integer") { .number(Double(int($0, "status", "currentNumberScheduled"))) },
                    Column(name: "Ready", type: "integer") { .number(Double(int($0, "status", "numberReady"))) },
                    Column(name: "Up-to-date", type: "integer") { .number(Double(int($0, "status", "updatedNumberScheduled"))) },
                    Column(name: "Available", type: "integer") { .number(Double(int($0, "status", "numberAvailable"))) },
                    Column(name: "Node Selector") { ds in
                        let selector = (ds.value(at: ["spec", "template", "spec", "nodeSelector"])?.objectValue ?? [:])
                            .compactMap { key, value in value.stringValue.map { "\(key)=\($0)" } }.sorted()
                        return .string(selector.isEmpty ? "<none>" : selector.joined(separator: ","))
                    },
                    ageColumn]
        case "services":
            return [name,
                    Column(name: "Type") { .string($0.string(at: "spec", "type") ?? "ClusterIP") },
                    Column(name: "Cluster-IP") { .string($0.string(at: "spec", "clusterIP") ?? "<none>") },
                    Column(name: "External-IP") { _ in "<none>" },
                    Column(name: "Port(s)") { service in
                        let ports = (service.value(at: ["spec", "ports"])?.arrayValue ?? []).map { port in
                            let nodePort = port["nodePort"]?.intValue.map { ":\($0)" } ?? ""
                            return "\(port["port"]?.intValue ?? 0)\(nodePort)/\(port["protocol"]?.stringValue ?? "TCP")"
                        }
                        return .string(ports.isEmpty ? "<none>" : ports.joined(separator: ","))
                    },
                    ageColumn]
        case "replicasets":
            return [name,
                    Column(name: "Desired", type: "integer") { .number(Double(int($0, "spec", "replicas"))) },
                    Column(name: "Current", type: "integer") { .number(Double(int($0, "status", "replicas"))) },
                    Column(name: "Ready", type: "integer") { .number(Double(int($0, "status", "readyReplicas"))) },
                    ageColumn]
        case "endpoints":
            return [name,
                    Column(name: "Endpoints") { endpoints in
                        let addresses = (endpoints["subsets"]?.arrayValue ?? []).flatMap { subset -> [String] in
                            let ports = (subset["ports"]?.arrayValue ?? []).compactMap { $0["port"]?.intValue }
                            return (subset["addresses"]?.arrayValue ?? []).flatMap { address in
                                ports.map { "\(address["ip"]?.stringValue ?? ""):\($0)" }
                            }
                        }
                        return .string(addresses.isEmpty ? "<none>" : addresses.joined(separator: ","))
                    },
                    ageColumn]
        case "events":
            return [Column(name: "Last Seen") { event in
                        var aged = event
                        aged.set(["metadata", "creationTimestamp"], to: event["lastTimestamp"])
                        return age(aged)
                    },
                    Column(name: "Type") { .string($0.string(at: "type") ?? "") },
                    Column(name: "Reason") { .string($0.string(at: "reason") ?? "") },
                    Column(name: "Object") { event in
                        .string("\((event.string(at: "involvedObject", "kind") ?? "").lowercased())/\(event.string(at: "involvedObject", "name") ?? "")")
                    },
                    Column(name: "Message") { .string($0.string(at: "message") ?? "") }]
        case "namespaces":
            return [name, Column(name: "Status") { .string($0.string(at: "status", "phase") ?? "Active") }, ageColumn]
        default:
            return [name, ageColumn]
        }
    }
}
