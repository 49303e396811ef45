import Foundation
import KubeModel
import Yams

/// Editing helpers the API server needs on untyped objects; kept here because only the sim mutates raw JSON.
extension JSONValue {
    var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    var intValue: Int? {
        if case .number(let number) = self, number.rounded() == number, abs(number) < 1e15 { return Int(number) }
        return nil
    }

    /// The value at a dotted path such as `["metadata", "name"]`, or nil when any step is missing.
    func value(at path: [String]) -> JSONValue? {
        var current: JSONValue? = self
        for key in path { current = current?[key] }
        return current
    }

    func string(at path: String...) -> String? { value(at: path)?.stringValue }

    /// Sets (or with nil removes) the value at `path`, creating intermediate objects.
    mutating func set(_ path: [String], to newValue: JSONValue?) {
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

    /// Parses a request body as JSON.
    static func parse(json data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// Parses a body that is YAML or JSON (`application/apply-patch+yaml` allows both), keeping YAML's own
    /// scalar types: a quoted `"1"` stays a string.
    static func parse(yaml text: String) throws -> JSONValue {
        guard let node = try Yams.compose(yaml: text) else { return .null }
        return try JSONValue(yaml: node)
    }

    init(yaml node: Yams.Node) throws {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.description) {
            case .null: self = .null
            case .bool: self = .bool(Bool.construct(from: scalar) ?? false)
            case .int, .float:
                if let number = Double.construct(from: scalar) { self = .number(number) } else { self = .string(scalar.string) }
            default: self = .string(scalar.string)
            }
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.scalar?.string else {
                    throw SimError("line \(key.mark?.line ?? 0): a mapping key must be a string")
                }
                object[name] = try JSONValue(yaml: value)
            }
            self = .object(object)
        case .sequence(let sequence):
            self = .array(try sequence.map { try JSONValue(yaml: $0) })
        case .alias:
            throw SimError("YAML aliases are not supported in request bodies")
        }
    }

    /// Compact JSON bytes; encoding a `JSONValue` cannot fail, so an empty object stands in for the impossible.
    var data: Data { (try? jsonData()) ?? Data("{}".utf8) }
}
