import Foundation
import KubeModel
import Yams

/// Request bodies in YAML (`application/apply-patch+yaml` allows YAML or JSON).
package extension JSONValue {
    /// Parses a body that is YAML or JSON, keeping YAML's own scalar types: a quoted `"1"` stays a string.
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
}
