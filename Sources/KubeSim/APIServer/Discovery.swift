import Foundation
import SimFaults
import SimStore
import KubeModel

/// `/version`, discovery (aggregated v2 and legacy) and a minimal `/openapi/v3`, shaped as kubectl 1.32 reads them.
package enum Discovery {
    package static let gitVersion = "v1.32.4"
    static let aggregatedContentType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

    static var version: JSONValue {
        ["major": "1", "minor": "32", "gitVersion": .string(gitVersion), "gitCommit": "kverify-sim",
         "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.6",
         "compiler": "gc", "platform": "linux/amd64"]
    }

    /// Whether the Accept header asks for aggregated discovery.
    static func wantsAggregated(_ accept: String) -> Bool {
        accept.contains("as=APIGroupDiscoveryList") && accept.contains("apidiscovery.k8s.io")
    }

    static let categories: Set<String> = ["pods", "services", "deployments", "replicasets", "daemonsets"]

    /// The kind a subresource's discovery entry names (`PodExecOptions` for `pods/exec`, as the real server).
    static func subresourceKind(_ name: String, of kind: String) -> String {
        switch name {
        case "scale": return "Scale"
        case "exec": return "PodExecOptions"
        case "attach": return "PodAttachOptions"
        case "portforward": return "PodPortForwardOptions"
        default: return kind
        }
    }

    static func subresourceVerbs(_ name: String) -> [JSONValue] {
        switch name {
        case "log": return ["get"]
        case "exec", "attach", "portforward": return ["create", "get"]
        case "proxy": return ["create", "delete", "get", "patch", "update"]
        case "finalize": return ["update"]
        default: return ["get", "patch", "update"]
        }
    }

    /// `APIGroupDiscoveryList` for `/api` (core) or `/apis` (named groups).
    static func aggregated(core: Bool) -> JSONValue {
        let groups = ResourceCatalog.groups.filter { $0.name.isEmpty == core }
        return [
            "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": [:],
            "items": .array(groups.map { group in
                [
                    "metadata": group.name.isEmpty ? ["creationTimestamp": nil] : ["name": .string(group.name), "creationTimestamp": nil],
                    "versions": [[
                        "version": .string(group.version), "freshness": "Current",
                        "resources": .array(ResourceCatalog.resources(group: group.name, version: group.version).map { resource in
                            var entry: JSONValue = [
                                "resource": .string(resource.plural),
                                "responseKind": ["group": .string(resource.group), "version": .string(resource.version), "kind": .string(resource.kind)],
                                "scope": resource.namespaced ? "Namespaced" : "Cluster",
                                "singularResource": .string(resource.singular),
                                "verbs": .array(ResourceType.verbs.map { .string($0) }),
                                "subresources": .array(resource.subresources.map { sub in
                                    ["subresource": .string(sub),
                                     "responseKind": ["group": .string(resource.group), "version": .string(resource.version),
                                                      "kind": .string(subresourceKind(sub, of: resource.kind))],
                                     "verbs": .array(subresourceVerbs(sub))]
                                }),
                            ]
                            if !resource.shortNames.isEmpty { entry.set(["shortNames"], to: .array(resource.shortNames.map { .string($0) })) }
                            if categories.contains(resource.plural) { entry.set(["categories"], to: ["all"]) }
                            return entry
                        }),
                    ]],
                ]
            }),
        ]
    }

    static func apiVersions(serverAddress: String) -> JSONValue {
        ["kind": "APIVersions", "versions": ["v1"],
         "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]]]
    }

    static func groupEntry(_ name: String, _ version: String) -> JSONValue {
        let groupVersion: JSONValue = ["groupVersion": .string("\(name)/\(version)"), "version": .string(version)]
        return ["name": .string(name), "versions": [groupVersion], "preferredVersion": groupVersion]
    }

    static var apiGroupList: JSONValue {
        ["kind": "APIGroupList", "apiVersion": "v1",
         "groups": .array(ResourceCatalog.groups.filter { !$0.name.isEmpty }.map { groupEntry($0.name, $0.version) })]
    }

    static func apiGroup(_ name: String) -> JSONValue? {
        guard let group = ResourceCatalog.groups.first(where: { $0.name == name && !name.isEmpty }) else { return nil }
        var entry = groupEntry(group.name, group.version)
        entry.set(["kind"], to: "APIGroup")
        entry.set(["apiVersion"], to: "v1")
        return entry
    }

    static func resourceList(group: String, version: String) -> JSONValue? {
        let resources = ResourceCatalog.resources(group: group, version: version)
        guard !resources.isEmpty else { return nil }
        var entries: [JSONValue] = []
        for resource in resources {
            var entry: JSONValue = [
                "name": .string(resource.plural), "singularName": .string(resource.singular),
                "namespaced": .bool(resource.namespaced), "kind": .string(resource.kind),
                "verbs": .array(ResourceType.verbs.map { .string($0) }),
            ]
            if !resource.shortNames.isEmpty { entry.set(["shortNames"], to: .array(resource.shortNames.map { .string($0) })) }
            if categories.contains(resource.plural) { entry.set(["categories"], to: ["all"]) }
            entries.append(entry)
            for sub in resource.subresources {
                entries.append(["name": .string("\(resource.plural)/\(sub)"), "singularName": "", "namespaced": .bool(resource.namespaced),
                                "kind": .string(subresourceKind(sub, of: resource.kind)), "verbs": .array(subresourceVerbs(sub))])
            }
        }
        let groupVersion = group.isEmpty ? version : "\(group)/\(version)"
        return ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion), "resources": .array(entries)]
    }

    // MARK: OpenAPI v3

    static func openAPIPath(group: String, version: String) -> String { group.isEmpty ? "api/\(version)" : "apis/\(group)/\(version)" }

    static var openAPIIndex: JSONValue {
        var paths: [String: JSONValue] = [:]
        for group in ResourceCatalog.groups {
            let path = openAPIPath(group: group.name, version: group.version)
            paths[path] = ["serverRelativeURL": .string("/openapi/v3/\(path)?hash=kverify-sim-1")]
        }
        return ["paths": .object(paths)]
    }

    /// A minimal OpenAPI document for one group/version: every resource's operations carry
    /// `x-kubernetes-group-version-kind` and the `fieldValidation` parameter, which is what kubectl checks to
    /// leave validation to the server (`fieldValidation=Strict`). Schemas are open objects.
    static func openAPIDocument(_ requestPath: String) -> JSONValue? {
        guard let group = ResourceCatalog.groups.first(where: { "/openapi/v3/" + openAPIPath(group: $0.name, version: $0.version) == requestPath })
        else { return nil }
        var paths: [String: JSONValue] = [:]
        var schemas: [String: JSONValue] = [:]
        let parameters: JSONValue = [
            ["name": "fieldValidation", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
            ["name": "fieldManager", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
            ["name": "dryRun", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
            ["name": "force", "in": "query", "schema": ["type": "boolean", "uniqueItems": true]],
        ]
        for resource in ResourceCatalog.resources(group: group.name, version: group.version) {
            let prefix = "/" + openAPIPath(group: group.name, version: group.version)
            let collection = resource.namespaced ? "\(prefix)/namespaces/{namespace}/\(resource.plural)" : "\(prefix)/\(resource.plural)"
            let gvk: JSONValue = ["group": .string(resource.group), "version": .string(resource.version), "kind": .string(resource.kind)]
            let schemaName = "io.k8s.kverify-sim.\(resource.groupVersion.replacingOccurrences(of: "/", with: ".")).\(resource.kind)"
            let response: JSONValue = ["200": ["description": "OK", "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(schemaName)")]]]]]
            func operation(_ id: String, _ action: String) -> JSONValue {
                ["operationId": .string(id + resource.kind), "parameters": parameters, "responses": response,
                 "x-kubernetes-action": .string(action), "x-kubernetes-group-version-kind": gvk]
            }
            paths[collection] = ["get": operation("list", "list"), "post": operation("create", "post")]
            paths["\(collection)/{name}"] = ["get": operation("read", "get"), "put": operation("replace", "put"),
                                             "patch": operation("patch", "patch"), "delete": operation("delete", "delete")]
            schemas[schemaName] = ["type": "object", "x-kubernetes-group-version-kind": [gvk],
                                   "x-kubernetes-preserve-unknown-fields": true]
        }
        return ["openapi": "3.0.0", "info": ["title": "Kubernetes", "version": .string(gitVersion)],
                "paths": .object(paths), "components": ["schemas": .object(schemas)]]
    }
}
