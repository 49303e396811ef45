import KubeClient

/// What a pattern's manifests may contain, checked before any cluster is contacted: kverify applies namespaced
/// objects into its own run namespace only, so a cluster-scoped object (a Node, a ClusterRole) — which would change
/// the cluster outside that namespace and survive the cleanup — is refused; and the pattern's app workload must be
/// there, or the run would wait for nothing and aim its traffic at whatever pod it finds.
public enum ManifestScope {
    /// Kinds the Kubernetes API serves cluster-scoped (kube-apiserver's built-in groups). A kind not listed here is
    /// checked against discovery at apply time (`refuseClusterScoped(_:api:)`). `Namespace` is absent: the run
    /// creates its own and drops the manifests' (`ManifestPreparation`).
    public static let clusterScopedKinds: Set<String> = [
        "Node", "PersistentVolume", "ComponentStatus",
        "ClusterRole", "ClusterRoleBinding", "StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "PriorityClass",
        "RuntimeClass", "IngressClass", "CustomResourceDefinition", "APIService", "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "CertificateSigningRequest", "FlowSchema",
        "PriorityLevelConfiguration", "PodSecurityPolicy", "SelfSubjectReview", "TokenReview", "SubjectAccessReview",
        "SelfSubjectAccessReview", "SelfSubjectRulesReview", "IPAddress", "ServiceCIDR", "ResourceSlice", "DeviceClass",
        "StorageVersion", "StorageVersionMigration", "VolumeAttributesClass", "ClusterTrustBundle",
    ]

    /// Refuses cluster-scoped objects known offline and a pattern without its app workload.
    /// - Throws: `KubeError(.badManifest)` naming every offending object (kind/name and file), or what was found.
    public static func check(_ manifests: [Manifest], pattern: Pattern) throws(KubeError) {
        let clusterScoped = manifests.filter { clusterScopedKinds.contains($0.kind) }
        if !clusterScoped.isEmpty { throw refusal(clusterScoped) }
        let app = manifests.filter { $0.kind == pattern.workloadKind && !ManifestPreparation.isRedisWorkload($0.object) }
        guard app.isEmpty else { return }
        let files = Array(Set(manifests.map(\.file))).sorted()
        let found = manifests.isEmpty ? "no objects" : manifests.map { "\($0.kind)/\($0.name) (\($0.file))" }.joined(separator: ", ")
        throw KubeError(.badManifest, "the \(pattern) pattern needs a \(pattern.workloadKind) for the app and its exporter (one whose pod "
            + "template is not labelled app=redis); \(files.isEmpty ? "the manifests" : files.joined(separator: ", ")) hold \(found)")
    }

    /// Asks discovery for the scope of every kind `check` does not know (custom resources) and refuses the
    /// cluster-scoped ones. - Throws: `KubeError(.badManifest)`, or the discovery request's error.
    public static func refuseClusterScoped(_ manifests: [Manifest], api: any KubeAPI) async throws {
        var clusterScoped: [Manifest] = []
        for manifest in manifests where manifest.kind != "Namespace" {
            do {
                let resource = try await api.resource(apiVersion: manifest.apiVersion, kind: manifest.kind)
                if !resource.namespaced { clusterScoped.append(manifest) }
            } catch let error as KubeError {
                throw KubeError(error.code, "applying \(manifest.origin): \(error.message)", status: error.status)
            }
        }
        if !clusterScoped.isEmpty { throw refusal(clusterScoped) }
    }

    private static func refusal(_ objects: [Manifest]) -> KubeError {
        KubeError(.badManifest, "kverify applies namespaced objects into its run namespace only and refuses cluster-scoped ones, which "
            + "would change the cluster outside the run and survive its cleanup: "
            + objects.map { "\($0.kind)/\($0.name) (\($0.file) line \($0.line))" }.joined(separator: ", ")
            + "; remove them from the manifests, or create them yourself before the run")
    }
}
