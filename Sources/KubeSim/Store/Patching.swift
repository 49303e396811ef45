import Foundation
import KubeModel

/// The patch formats of the API server, as pure functions over `JSONValue`.
package enum Patching {
    /// RFC 7386 JSON merge patch: objects merge, `null` deletes, everything else replaces.
    package static func mergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target.objectValue ?? [:]
        for (key, value) in patchObject {
            if value == .null {
                result[key] = nil
            } else {
                result[key] = mergePatch(result[key] ?? .null, value)
            }
        }
        return .object(result)
    }

    /// A strategic merge patch as the API server applies kubectl's (`kubectl apply` without `--server-side`, `kubectl
    /// patch`, helm's three-way patches): objects merge and `null` deletes; lists merge element by element where the
    /// Go type declares `patchStrategy:"merge"` (`mergeKey`: containers, env, volumes by name, container ports by
    /// containerPort, Service ports by port, volumeMounts by mountPath), every other list is replaced. Directives:
    /// `$patch: replace|delete` on maps and list elements, `$retainKeys`, `$deleteFromPrimitiveList/FIELD`,
    /// `$setElementOrder/FIELD` (the order of a merged list).
    static func strategicMerge(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        if patchObject["$patch"]?.stringValue == "replace" {
            return .object(patchObject.filter { !$0.key.hasPrefix("$") })
        }
        var result = target.objectValue ?? [:]
        for (key, value) in patchObject where !key.hasPrefix("$") {
            if value == .null || value["$patch"]?.stringValue == "delete" {
                result[key] = nil
            } else if case .array(let patched) = value, let mergeKey = mergeKey(for: key, patched + (result[key]?.arrayValue ?? [])) {
                result[key] = .array(mergeList(result[key]?.arrayValue ?? [], patched, by: mergeKey))
            } else if case .array(let patched) = value, key == "finalizers" {
                let existing = result[key]?.arrayValue ?? []
                result[key] = .array(existing + patched.filter { !existing.contains($0) })
            } else {
                result[key] = strategicMerge(result[key] ?? .null, value)
            }
        }
        for (key, value) in patchObject {
            if key.hasPrefix("$deleteFromPrimitiveList/"), let removed = value.arrayValue {
                let field = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                if let list = result[field]?.arrayValue {
                    let kept = list.filter { !removed.contains($0) }
                    result[field] = kept.isEmpty ? nil : .array(kept)
                }
            } else if key.hasPrefix("$setElementOrder/"), let order = value.arrayValue {
                let field = String(key.dropFirst("$setElementOrder/".count))
                if let list = result[field]?.arrayValue, let mergeKey = mergeKey(for: field, order + list) {
                    let ranked = order.compactMap { $0[mergeKey] }
                    result[field] = .array(list.enumerated().sorted { lhs, rhs in
                        let left = lhs.element[mergeKey].flatMap { ranked.firstIndex(of: $0) } ?? ranked.count + lhs.offset
                        let right = rhs.element[mergeKey].flatMap { ranked.firstIndex(of: $0) } ?? ranked.count + rhs.offset
                        return left < right
                    }.map(\.element))
                }
            }
        }
        if let retained = patchObject["$retainKeys"]?.arrayValue?.compactMap(\.stringValue) {
            result = result.filter { retained.contains($0.key) }
        }
        return .object(result)
    }

    /// The `patchMergeKey` of a list field of the built-in types, or nil for a list that a patch replaces. `ports`
    /// is a container's (keyed by containerPort) or a Service's (keyed by port): the elements say which.
    static func mergeKey(for field: String, _ elements: [JSONValue]) -> String? {
        guard !elements.isEmpty, elements.allSatisfy({ $0.objectValue != nil }) else { return nil }
        switch field {
        case "containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets": return "name"
        case "volumeMounts": return "mountPath"
        case "volumeDevices": return "devicePath"
        case "hostAliases": return "ip"
        case "conditions": return "type"
        case "ownerReferences": return "uid"
        case "topologySpreadConstraints": return "topologyKey"
        case "ports": return elements.contains { $0["containerPort"] != nil } ? "containerPort" : "port"
        default: return nil
        }
    }

    /// Merges a patch's list into the stored one by `key`: `$patch: delete` removes an element, `$patch: replace`
    /// replaces the whole list with the patch's other elements, a new key is appended.
    static func mergeList(_ existing: [JSONValue], _ patched: [JSONValue], by key: String) -> [JSONValue] {
        if patched.contains(where: { $0["$patch"]?.stringValue == "replace" }) {
            return patched.filter { $0["$patch"] == nil }
        }
        var result = existing
        for item in patched {
            let identity = item[key]
            let index = result.firstIndex { $0[key] == identity }
            if item["$patch"]?.stringValue == "delete" {
                if let index { result.remove(at: index) }
            } else if let index {
                result[index] = strategicMerge(result[index], item)
            } else {
                result.append(strategicMerge(.object([:]), item))
            }
        }
        return result
    }

    /// RFC 6902 JSON patch (`add`, `remove`, `replace`, `test`, `copy`, `move`).
    static func jsonPatch(_ target: JSONValue, _ operations: JSONValue) throws -> JSONValue {
        guard let list = operations.arrayValue else {
            throw APIError.badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        }
        var document = target
        for operation in list {
            guard let op = operation["op"]?.stringValue, let path = operation["path"]?.stringValue else {
                throw APIError.badRequest("the json patch operation \(String(decoding: operation.data, as: UTF8.self)) lacks op or path")
            }
            let pointer = try parsePointer(path)
            switch op {
            case "add", "replace":
                guard let value = operation["value"] else { throw APIError.badRequest("missing value for \(op) \(path)") }
                if op == "replace", valueAt(pointer, in: document) == nil {
                    throw APIError.badRequest("the server rejected our request due to an error in our request: replace operation does not apply: doc is missing key: \(path)")
                }
                try setPointer(pointer, in: &document, to: value, inserting: op == "add")
            case "remove":
                guard valueAt(pointer, in: document) != nil else {
                    throw APIError.badRequest("the server rejected our request due to an error in our request: remove operation does not apply: doc is missing path: \(path)")
                }
                try setPointer(pointer, in: &document, to: nil, inserting: false)
            case "test":
                guard valueAt(pointer, in: document) == operation["value"] else {
                    throw APIError(code: 422, reason: "Invalid", message: "the server rejected our request due to an error in our request: testing value \(path) failed")
                }
            case "copy", "move":
                guard let from = operation["from"]?.stringValue, let value = valueAt(try parsePointer(from), in: document) else {
                    throw APIError.badRequest("\(op) operation does not apply: missing from")
                }
                if op == "move" { try setPointer(try parsePointer(from), in: &document, to: nil, inserting: false) }
                try setPointer(pointer, in: &document, to: value, inserting: true)
            default:
                throw APIError.badRequest("Unexpected kind: \(op)")
            }
        }
        return document
    }

    static func parsePointer(_ path: String) throws -> [String] {
        guard path.hasPrefix("/") else { throw APIError.badRequest("JSON pointer \"\(path)\" must start with /") }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    static func valueAt(_ pointer: [String], in document: JSONValue) -> JSONValue? {
        var current: JSONValue? = document
        for token in pointer {
            switch current {
            case .object(let object)?: current = object[token]
            case .array(let array)?: current = Int(token).flatMap { array.indices.contains($0) ? array[$0] : nil }
            default: return nil
            }
        }
        return current
    }

    static func setPointer(_ pointer: [String], in document: inout JSONValue, to value: JSONValue?, inserting: Bool) throws {
        guard let token = pointer.first else {
            document = value ?? .null
            return
        }
        let rest = Array(pointer.dropFirst())
        switch document {
        case .object(var object):
            if rest.isEmpty {
                object[token] = value
            } else {
                guard var child = object[token] else { throw APIError.badRequest("doc is missing path: /\(pointer.joined(separator: "/"))") }
                try setPointer(rest, in: &child, to: value, inserting: inserting)
                object[token] = child
            }
            document = .object(object)
        case .array(var array):
            let index = token == "-" ? array.count : (Int(token) ?? -1)
            guard index >= 0, index <= array.count else { throw APIError.badRequest("array index \(token) out of bounds") }
            if rest.isEmpty {
                if let value {
                    if inserting { array.insert(value, at: index) } else if index < array.count { array[index] = value }
                } else if index < array.count {
                    array.remove(at: index)
                }
            } else {
                guard index < array.count else { throw APIError.badRequest("array index \(token) out of bounds") }
                try setPointer(rest, in: &array[index], to: value, inserting: inserting)
            }
            document = .array(array)
        default:
            throw APIError.badRequest("doc is missing path: /\(pointer.joined(separator: "/"))")
        }
    }

    static func isNamedList(_ list: [JSONValue]) -> Bool {
        !list.isEmpty && list.allSatisfy { $0["name"]?.stringValue != nil }
    }

    static func mergeNamed(_ existing: [JSONValue], _ patched: [JSONValue], _ merge: (JSONValue, JSONValue) -> JSONValue) -> [JSONValue] {
        var result = existing
        for item in patched {
            let name = item["name"]?.stringValue
            if let index = result.firstIndex(where: { $0["name"]?.stringValue == name }) {
                result[index] = merge(result[index], item)
            } else {
                result.append(item)
            }
        }
        return result
    }
}

/// Server-side apply, simplified: field ownership per manager at leaf granularity (lists of named objects are
/// keyed by `name`, other lists are atomic), conflicts when another manager owns a field whose value would change,
/// and removal of fields a manager stops applying.
package enum FieldOwnership {
    enum Step: Hashable, Sendable, Comparable {
        case key(String)
        case named(String)
    }

    typealias Path = [Step]

    struct Entry: Sendable, Equatable {
        var manager: String
        var operation: String
        var apiVersion: String
        var time: String
        var fields: Set<Path>
    }

    /// Fields the object's identity consists of; nobody owns them.
    static let identity: Set<Path> = [[.key("apiVersion")], [.key("kind")], [.key("metadata"), .key("name")],
                                      [.key("metadata"), .key("namespace")]]

    static func leaves(of value: JSONValue, prefix: Path = []) -> Set<Path> {
        var result: Set<Path> = []
        switch value {
        case .object(let object) where !object.isEmpty:
            for (key, child) in object {
                if prefix.isEmpty, key == "status" { continue }
                if prefix == [.key("metadata")], ["managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"].contains(key) { continue }
                result.formUnion(leaves(of: child, prefix: prefix + [.key(key)]))
            }
        case .array(let array) where Patching.isNamedList(array):
            for item in array {
                guard let name = item["name"]?.stringValue else { continue }
                result.formUnion(leaves(of: item, prefix: prefix + [.named(name)]))
            }
        default:
            result.insert(prefix)
        }
        return result.subtracting(identity)
    }

    static func value(at path: Path, in document: JSONValue) -> JSONValue? {
        var current: JSONValue? = document
        for step in path {
            switch step {
            case .key(let key): current = current?[key]
            case .named(let name): current = current?.arrayValue?.first { $0["name"]?.stringValue == name }
            }
        }
        return current
    }

    static func remove(_ path: Path, from document: inout JSONValue) {
        guard let step = path.first else { return }
        let rest = Array(path.dropFirst())
        switch (step, document) {
        case (.key(let key), .object(var object)):
            if rest.isEmpty {
                object[key] = nil
            } else if var child = object[key] {
                remove(rest, from: &child)
                object[key] = child
            }
            document = .object(object)
        case (.named(let name), .array(var array)):
            guard let index = array.firstIndex(where: { $0["name"]?.stringValue == name }) else { return }
            if rest.isEmpty || rest == [.key("name")] {
                array.remove(at: index)
            } else {
                remove(rest, from: &array[index])
            }
            document = .array(array)
        default:
            return
        }
    }

    /// Deep merge used by apply: objects merge, named lists merge by name, everything else is replaced.
    static func merge(_ existing: JSONValue, _ applied: JSONValue) -> JSONValue {
        switch (existing, applied) {
        case (.object(var result), .object(let object)):
            for (key, value) in object { result[key] = merge(result[key] ?? .null, value) }
            return .object(result)
        case (.array(let old), .array(let new)) where Patching.isNamedList(old) && Patching.isNamedList(new):
            // Keep the applied order, then elements owned by others that the applier did not mention.
            let names = Set(new.compactMap { $0["name"]?.stringValue })
            let merged = new.map { item in
                old.first { $0["name"] == item["name"] }.map { merge($0, item) } ?? item
            }
            return .array(merged + old.filter { !names.contains($0["name"]?.stringValue ?? "") })
        default:
            return applied
        }
    }

    /// `.spec.template.spec.containers[name="app"].image`, as the real conflict message prints a field.
    static func describe(_ path: Path) -> String {
        path.map { step in
            switch step {
            case .key(let key): return ".\(key)"
            case .named(let name): return "[name=\"\(name)\"]"
            }
        }.joined()
    }

    /// The `fieldsV1` trie of a field set (`{"f:spec":{"f:replicas":{}}}`).
    static func fieldsV1(_ fields: Set<Path>) -> JSONValue {
        var root: JSONValue = .object([:])
        for path in fields {
            let keys = path.map { step -> String in
                switch step {
                case .key(let key): return "f:\(key)"
                case .named(let name): return "k:{\"name\":\"\(name)\"}"
                }
            }
            var current = root.value(at: keys) ?? .object([:])
            if current.objectValue == nil { current = .object([:]) }
            root.set(keys, to: current)
            // Named elements also own their key field, as the real trie records with `f:name`.
        }
        return root
    }
}
