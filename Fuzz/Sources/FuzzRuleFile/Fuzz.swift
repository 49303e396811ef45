import MetricRules

/// Rules files: every error must be a located message, never a crash or a hang.
func fuzz(_ bytes: [UInt8]) {
    guard let text = String(validating: bytes, as: UTF8.self) else { return }
    _ = try? RuleFile.parse(text, name: "fuzz.yaml")
}
