import Yams

/// Turns Yams' errors into "line L, column C: problem" without quoting the offending text: a kubeconfig line
/// may hold a token, and Yams' own descriptions print the line.
public enum YAMLLocation {
    /// A human-readable location and problem for a Yams or decoding error.
    /// `source`, the text that was decoded, lets a decoding error name the line and column of the value it is about.
    public static func describe(_ error: any Error, source: String? = nil) -> String {
        switch error {
        case YamlError.scanner(let context, let problem, let mark, _),
            YamlError.parser(let context, let problem, let mark, _),
            YamlError.composer(let context, let problem, let mark, _):
            let contextText = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return "line \(mark.line), column \(mark.column): \(problem)\(contextText)"
        case YamlError.duplicatedKeysInMapping(let duplicates, let context):
            return "line \(context.mark.line), column \(context.mark.column): duplicated keys \(duplicates.sorted().joined(separator: ", "))"
        case YamlError.reader(let problem, let offset, _, _):
            return "byte \(offset ?? 0): \(problem)"
        case YamlError.dataCouldNotBeDecoded:
            return "not UTF-8 text"
        case let error as DecodingError:
            return describe(error, source: source)
        default:
            return "\(type(of: error))"
        }
    }

    /// Worded "expected TYPE at PATH (line L, column C), found …": the path's last key is never followed by a colon,
    /// so a field named `token` or `password` is not mistaken for a secret's value by `Redaction`.
    static func describe(_ error: DecodingError, source: String? = nil) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return keys.isEmpty ? "the top level" : String(keys.drop { $0 == "." })
        }
        func located(_ context: DecodingError.Context) -> (place: String, found: String) {
            guard let source, let node = node(at: context.codingPath, in: source) else { return (path(context), "") }
            let place = node.mark.map { "\(path(context)) (line \($0.line), column \($0.column))" } ?? path(context)
            let found = switch node {
            case .scalar: ", found a scalar"
            case .sequence: ", found a sequence"
            case .mapping: ", found a mapping"
            case .alias: ""
            }
            return (place, found)
        }
        switch error {
        case .typeMismatch(let type, let context):
            let (place, found) = located(context)
            return "expected \(typeName(type)) at \(place)\(found)"
        case .valueNotFound(let type, let context):
            return "expected \(typeName(type)) at \(located(context).place), found nothing"
        case .keyNotFound(let key, let context):
            return "required field '\(key.stringValue)' is missing at \(located(context).place)"
        case .dataCorrupted(let context):
            // Yams wraps its parse errors; the underlying one carries the line and column.
            if let underlying = context.underlyingError, underlying is YamlError { return describe(underlying) }
            return "\(context.debugDescription) at \(located(context).place)"
        @unknown default:
            return "undecodable"
        }
    }

    /// The expected type in the YAML's words: Yams names the node kind it wanted (`Node.Scalar`, `Node.Sequence`,
    /// `Node.Mapping`); a Swift type named instead is what the scalar should have held.
    static func typeName(_ type: Any.Type) -> String {
        let name = "\(type)".split(separator: ".").last.map(String.init) ?? "\(type)"
        switch name {
        case "Scalar": return "a scalar"
        case "Sequence": return "a sequence"
        case "Mapping": return "a mapping"
        default:
            if name.hasPrefix("Array<") { return "a sequence" }
            if name.hasPrefix("Dictionary<") { return "a mapping" }
            return "a value of type \(name)"
        }
    }

    /// The node a decoding path leads to in `source` (its first document), nil when the path cannot be followed.
    static func node(at path: [any CodingKey], in source: String) -> Node? {
        guard var node = try? Yams.compose(yaml: source) else { return nil }
        for key in path {
            let next: Node?
            if let index = key.intValue, case .sequence = node { next = node[index] } else { next = node[key.stringValue] }
            guard let next else { return nil }
            node = next
        }
        return node
    }
}
