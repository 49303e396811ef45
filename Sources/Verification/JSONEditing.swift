import KubeModel

/// Path reads and writes on untyped manifests, for the few fields a run rewrites (namespace, labels, images,
/// env, replicas, nodePorts). Writing through a missing or non-object step creates an object there.
extension JSONValue {
    func value(at path: [String]) -> JSONValue? {
        var current: JSONValue? = self
        for key in path { current = current?[key] }
        return current
    }

    mutating func set(_ path: [String], to newValue: JSONValue?) {
        guard let first = path.first else {
            self = newValue ?? .null
            return
        }
        var object: [String: JSONValue]
        if case .object(let existing) = self { object = existing } else { object = [:] }
        if path.count == 1 {
            object[first] = newValue
        } else {
            var child = object[first] ?? .object([:])
            child.set(Array(path.dropFirst()), to: newValue)
            object[first] = child
        }
        self = .object(object)
    }

    /// Applies `transform` to every element of the array at `path` (nothing when there is none).
    mutating func updateEach(at path: [String], _ transform: (inout JSONValue) -> Void) {
        guard case .array(var items)? = value(at: path) else { return }
        for index in items.indices { transform(&items[index]) }
        set(path, to: .array(items))
    }

    var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    var intValue: Int? {
        if case .number(let number) = self, number == number.rounded() { return Int(number) }
        return nil
    }
}
