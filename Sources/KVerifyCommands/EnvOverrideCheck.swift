import Findings
import KubeClient
import KubeModel
import Verification

/// `--env CONTAINER:NAME=VALUE` must name a container the app pods have: one that matches nothing would be
/// applied nowhere, and the run would verify a deployment without the setting the user asked for.
enum EnvOverrideCheck {
    /// The containers and init containers of the pattern's workloads other than Redis, in manifest order.
    static func appContainers(_ manifests: [Manifest]) -> [String] {
        var names: [String] = []
        for manifest in manifests where ["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet"].contains(manifest.kind)
            && !ManifestPreparation.isRedisWorkload(manifest.object) {
            for list in ["containers", "initContainers"] {
                guard case .array(let containers)? = manifest.object["spec"]?["template"]?["spec"]?[list] else { continue }
                for container in containers {
                    if let name = container["name"]?.stringValue, !names.contains(name) { names.append(name) }
                }
            }
        }
        return names
    }

    /// - Throws: `KVerifyError` (exit 2) naming the first override whose container is not among the app's.
    static func validate(_ overrides: [ManifestPreparation.EnvOverride], texts: [String], manifests: [Manifest], source: String) throws {
        let known = appContainers(manifests)
        for (override, text) in zip(overrides, texts) {
            guard let container = override.container, !known.contains(container) else { continue }
            throw KVerifyError(.usageOrInput,
                "--env '\(text)': no container '\(container)' in the app pods of \(source); they have "
                    + (known.isEmpty ? "none" : known.joined(separator: ", "))
                    + ". Name one of those, or give NAME=VALUE to set it in every container")
        }
    }
}
