import KubeModel

/// The real server's checks of an object's labels (`ValidateLabels` in apimachinery): every key a qualified name,
/// every value at most 63 characters of the label-value shape. The pod template of a workload is checked the same
/// way, so a bad label fails at `kubectl apply`, not later in the controller.
enum MetadataValidation {
    static let labelValueMessage = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    static let qualifiedNameMessage = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

    static func validate(_ resource: ResourceType, _ object: JSONValue) throws {
        var causes: [APIError.Cause] = []
        for path in [["metadata"], ["spec", "template", "metadata"]] {
            guard let labels = object.value(at: path + ["labels"])?.objectValue else { continue }
            let field = (path + ["labels"]).joined(separator: ".")
            for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
                causes += keyProblems(key).map { APIError.Cause.invalid(field, value: key, why: $0) }
                let text = value.stringValue ?? ""
                causes += valueProblems(text).map { APIError.Cause.invalid(field, value: text, why: $0) }
            }
        }
        guard causes.isEmpty else {
            throw APIError.invalid(resource, object.string(at: "metadata", "name") ?? "", causes: causes)
        }
    }

    /// `IsValidLabelValue`: both problems are reported when both hold, as the real check does.
    static func valueProblems(_ value: String) -> [String] {
        var problems: [String] = []
        if value.utf8.count > 63 { problems.append("must be no more than 63 characters") }
        if !LabelQuery.hasLabelValueShape(value) { problems.append(labelValueMessage) }
        return problems
    }

    /// `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name part of at most 63 characters.
    static func keyProblems(_ key: String) -> [String] {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else {
            return ["a qualified name " + qualifiedNameMessage + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
        }
        var problems: [String] = []
        if parts.count == 2 {
            let prefix = parts[0]
            if prefix.isEmpty {
                problems.append("prefix part must be non-empty")
            } else {
                if prefix.utf8.count > 253 { problems.append("prefix part must be no more than 253 characters") }
                let shaped = prefix.split(separator: ".", omittingEmptySubsequences: false)
                    .allSatisfy { NameValidation.isLabelShape(Array($0.utf8)) }
                if !shaped { problems.append("prefix part " + NameValidation.subdomainMessage) }
            }
        }
        let name = parts[parts.count - 1]
        if name.isEmpty {
            problems.append("name part must be non-empty")
        } else {
            if name.utf8.count > 63 { problems.append("name part must be no more than 63 characters") }
            if !LabelQuery.hasLabelValueShape(name) { problems.append("name part " + qualifiedNameMessage) }
        }
        return problems
    }
}
