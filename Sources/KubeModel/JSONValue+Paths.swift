import Foundation

/// Path reads and writes on untyped objects: the sim's store and controllers, and the few fields a pattern run
/// rewrites in a user's manifests (namespace, labels, images, env, replicas, nodePorts). One copy, used by both.
extension JSONValue {
    public var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// A whole number small enough to be exact in a `Double` (and so safe to convert); nil otherwise.
    public var intValue: Int? {
        if case .number(let number) = self, number.rounded() == number, abs(number) < 1e15 { return Int(number) }
        return nil
    }

    /// The value at a path such as `["metadata", "name"]`, or nil when any step is missing.
    public func value(at path: [String]) -> JSONValue? {
        var current: JSONValue? = self
        for key in path { current = current?[key] }
        return current
    }

    public func string(at path: String...) -> String? { value(at: path)?.stringValue }

    /// Sets (or with nil removes) the value at `path`; a missing or non-object step becomes an object.
    public mutating func set(_ path: [String], to newValue: JSONValue?) {
        guard let first = path.first else {
            self = newValue ?? .null
            return
        }
        var object = objectValue ?? [:]
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
    public mutating func updateEach(at path: [String], _ transform: (inout JSONValue) -> Void) {
        guard var items = value(at: path)?.arrayValue else { return }
        for index in items.indices { transform(&items[index]) }
        set(path, to: .array(items))
    }

    /// Compact JSON bytes; encoding a `JSONValue` cannot fail, so an empty object stands in for the impossible.
    public var data: Data { (try? jsonData()) ?? Data("{}".utf8) }
}
