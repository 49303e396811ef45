import KubeClient

/// Multi-document manifests through the YAML budget and the conversion to JSON.
func fuzz(_ bytes: [UInt8]) {
    guard let text = String(validating: bytes, as: UTF8.self) else { return }
    _ = try? ManifestLoader.load(yaml: text, file: "fuzz.yaml")
}
