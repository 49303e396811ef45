import Yams

/// Turns Yams' errors into "line L, column C: problem" without quoting the offending text: a kubeconfig line
/// may hold a token, and Yams' own descriptions print the line.
public enum YAMLLocation {
    /// A human-readable location and problem for a Yams or decoding error.
    public static func describe(_ error: any Error) -> String {
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
            return describe(error)
        default:
            return "\(type(of: error))"
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return keys.isEmpty ? "top level" : String(keys.drop { $0 == "." })
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context)): expected \(type), found nothing"
        case .keyNotFound(let key, let context):
            let prefix = context.codingPath.isEmpty ? "" : "\(path(context)): "
            return "\(prefix)required field '\(key.stringValue)' is missing"
        case .dataCorrupted(let context):
            // Yams wraps its parse errors; the underlying one carries the line and column.
            if let underlying = context.underlyingError, underlying is YamlError { return describe(underlying) }
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "undecodable"
        }
    }
}
