/// The deployment patterns kverify verifies end to end. Each names the manifest file it applies (beside the
/// shared `redis.yaml`) and the workload whose rollout it waits for.
public enum Pattern: String, Sendable, CaseIterable, CustomStringConvertible {
    /// One app+exporter pod on every schedulable node (`manifests/daemonset.yaml`).
    case daemonset
    /// A Deployment with one app+exporter pod per node, replicas = `--nodes` (`manifests/sidecar.yaml`).
    case sidecar

    public var description: String { rawValue }

    /// The pattern's own manifest file, relative to the manifests directory.
    public var manifestFile: String { "\(rawValue).yaml" }

    /// Every manifest file a run applies, Redis first so the app's init container finds it.
    public var manifestFiles: [String] { ["redis.yaml", manifestFile] }

    /// The workload kind whose pods carry the app and the exporter.
    public var workloadKind: String {
        switch self {
        case .daemonset: "DaemonSet"
        case .sidecar: "Deployment"
        }
    }
}

/// The label every object of a run carries, and how a run is named.
public enum RunLabel {
    /// `kverify.io/run=<id>` on every object kverify applies (and on their pod templates).
    public static let key = "kverify.io/run"

    /// A fresh run id: 6 lower-case letters and digits, valid in a namespace name and a label value.
    public static func newID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<6).map { _ in alphabet.randomElement()! })
    }
}
