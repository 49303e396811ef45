import Foundation
import KubeModel

/// A parsed `labelSelector` query: every requirement must hold (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`).
package struct LabelQuery: Sendable, Equatable {
    enum Requirement: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    var requirements: [Requirement] = []

    /// The empty selector, which matches everything.
    package init() {}

    /// Parses the text form. - Throws: `APIError` 400 naming the requirement that does not parse.
    package init(parsing text: String) throws {
        for term in Self.splitTopLevel(text) {
            let trimmed = term.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            requirements.append(try Self.requirement(trimmed))
        }
    }

    package init(matchLabels: [String: String]) {
        requirements = matchLabels.sorted { $0.key < $1.key }.map { .equals($0.key, $0.value) }
    }

    package func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): return labels[key] == value
            case .notEquals(let key, let value): return labels[key] != value
            case .isIn(let key, let values): return labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): return !(labels[key].map(values.contains) ?? false)
            case .exists(let key): return labels[key] != nil
            case .doesNotExist(let key): return labels[key] == nil
            }
        }
    }

    /// Splits on commas that are not inside `( … )`.
    static func splitTopLevel(_ text: String) -> [String] {
        var parts: [String] = [], current = "", depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    static func requirement(_ term: String) throws -> Requirement {
        func fail(_ why: String) -> APIError {
            .badRequest("unable to parse requirement: \(why): \"\(term)\"")
        }
        func key(_ raw: Substring) throws -> String {
            let key = raw.trimmingCharacters(in: .whitespaces)
            guard isQualifiedName(key) else { throw fail("invalid label key \"\(key)\"") }
            return key
        }
        func value(_ raw: Substring) throws -> String {
            let value = raw.trimmingCharacters(in: .whitespaces)
            guard isLabelValue(value) else { throw fail("invalid label value \"\(value)\"") }
            return value
        }
        if let range = term.range(of: "!=") {
            return .notEquals(try key(term[..<range.lowerBound]), try value(term[range.upperBound...]))
        }
        if let range = term.range(of: "==") ?? term.range(of: "=") {
            return .equals(try key(term[..<range.lowerBound]), try value(term[range.upperBound...]))
        }
        for (word, isNot) in [(" notin ", true), (" in ", false)] {
            if let range = term.range(of: word) {
                let list = term[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard list.hasPrefix("("), list.hasSuffix(")") else { throw fail("values must be in parentheses") }
                let values = try list.dropFirst().dropLast().split(separator: ",").map { try value($0) }
                let name = try key(term[..<range.lowerBound])
                return isNot ? .notIn(name, Set(values)) : .isIn(name, Set(values))
            }
        }
        if term.hasPrefix("!") { return .doesNotExist(try key(term.dropFirst())) }
        return .exists(try key(term[...]))
    }

    /// `prefix/name` with a DNS subdomain prefix and a 63-character name of alphanumerics, `-`, `_`, `.`.
    static func isQualifiedName(_ key: String) -> Bool {
        MetadataValidation.keyProblems(key).isEmpty
    }

    static func isLabelValue(_ value: String) -> Bool {
        value.utf8.count <= 63 && hasLabelValueShape(value)
    }

    /// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, any length.
    static func hasLabelValueShape(_ value: String) -> Bool {
        if value.isEmpty { return true }
        func alnum(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber) }
        guard let first = value.first, let last = value.last, alnum(first), alnum(last) else { return false }
        return value.allSatisfy { alnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }
}

/// A parsed `fieldSelector` query over the fields the real server supports for each resource.
package struct FieldQuery: Sendable, Equatable {
    struct Requirement: Sendable, Equatable {
        var field: String
        var value: String
        var negated: Bool
    }

    var requirements: [Requirement] = []

    package init(parsing text: String, for resource: ResourceType) throws {
        for term in text.split(separator: ",") {
            let term = String(term)
            let negated = term.contains("!=")
            let separator = negated ? "!=" : (term.contains("==") ? "==" : "=")
            guard let range = term.range(of: separator) else {
                throw APIError.badRequest("invalid selector: '\(text)'; can't understand '\(term)'")
            }
            let field = String(term[..<range.lowerBound]), value = String(term[range.upperBound...])
            guard Self.supported(for: resource).contains(field) else {
                throw APIError.badRequest("field label not supported: \(field)")
            }
            requirements.append(Requirement(field: field, value: value, negated: negated))
        }
    }

    static func supported(for resource: ResourceType) -> Set<String> {
        var fields: Set<String> = ["metadata.name", "metadata.namespace"]
        switch resource.plural {
        case "pods":
            fields.formUnion(["spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
                              "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"])
        case "events":
            fields.formUnion(["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"])
        case "secrets": fields.insert("type")
        case "nodes": fields.insert("spec.unschedulable")
        case "namespaces": fields.insert("status.phase")
        default: break
        }
        return fields
    }

    package func matches(_ object: JSONValue) -> Bool {
        requirements.allSatisfy { requirement in
            let path = requirement.field == "source" ? ["source", "component"] : requirement.field.split(separator: ".").map(String.init)
            let actual: String
            switch object.value(at: path) {
            case .string(let text)?: actual = text
            case .bool(let flag)?: actual = flag ? "true" : "false"
            default: actual = ""
            }
            return (actual == requirement.value) != requirement.negated
        }
    }
}

package extension LabelQuery {
    /// A metav1.LabelSelector (matchLabels and matchExpressions) as a query.
    init?(selector: JSONValue?) {
        guard let selector else { return nil }
        var text: [String] = ((selector["matchLabels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        for expression in selector["matchExpressions"]?.arrayValue ?? [] {
            guard let key = expression["key"]?.stringValue, let op = expression["operator"]?.stringValue else { continue }
            let values = (expression["values"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
            switch op {
            case "In": text.append("\(key) in (\(values))")
            case "NotIn": text.append("\(key) notin (\(values))")
            case "Exists": text.append(key)
            case "DoesNotExist": text.append("!\(key)")
            default: continue
            }
        }
        guard let query = try? LabelQuery(parsing: text.joined(separator: ",")) else { return nil }
        self = query
    }
}
