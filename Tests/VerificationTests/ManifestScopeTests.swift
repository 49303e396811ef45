import Foundation
import KubeClient
import KubeSim
import Testing
import Verification

/// kverify applies namespaced objects into its run namespace only, and a pattern's files must hold its workload.
@Suite("Manifest scope")
struct ManifestScopeTests {
    static let app = """
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: app}
        spec:
          selector: {matchLabels: {app: demo}}
          template:
            metadata: {labels: {app: demo}}
            spec: {containers: [{name: app, image: "kverify-demo-app:dev"}]}
        """

    @Test("a Node and a ClusterRole are refused offline, each named with its file and line")
    func clusterScopedRefused() throws {
        let yaml = Self.app + """

            ---
            apiVersion: v1
            kind: Node
            metadata: {name: intruder}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata: {name: admin-too}
            """
        let manifests = try ManifestLoader.load(yaml: yaml, file: "daemonset.yaml")
        let error = #expect(throws: KubeError.self) { try ManifestScope.check(manifests, pattern: .daemonset) }
        #expect(error?.code == .badManifest)
        #expect(error?.message.contains("Node/intruder (daemonset.yaml line 10), ClusterRole/admin-too (daemonset.yaml line 14)") == true,
                "\(error?.message ?? "")")
    }

    @Test("a daemonset run whose files hold no DaemonSet (only Redis's and a Deployment) names what they hold")
    func missingWorkload() throws {
        let yaml = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: redis}
            spec:
              selector: {matchLabels: {app: redis}}
              template:
                metadata: {labels: {app: redis}}
                spec: {containers: [{name: redis, image: "redis:7"}]}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: app}
            spec:
              selector: {matchLabels: {app: demo}}
              template:
                metadata: {labels: {app: demo}}
                spec: {containers: [{name: app, image: "kverify-demo-app:dev"}]}
            """
        let manifests = try ManifestLoader.load(yaml: yaml, file: "daemonset.yaml")
        let error = #expect(throws: KubeError.self) { try ManifestScope.check(manifests, pattern: .daemonset) }
        #expect(error?.message == "the daemonset pattern needs a DaemonSet for the app and its exporter (one whose pod template is not "
            + "labelled app=redis); daemonset.yaml hold Deployment/redis (daemonset.yaml), Deployment/app (daemonset.yaml)")
        #expect(throws: Never.self) { try ManifestScope.check(manifests, pattern: .sidecar) }
        let empty = #expect(throws: KubeError.self) { try ManifestScope.check([], pattern: .sidecar) }
        #expect(empty?.message.hasSuffix("the manifests hold no objects") == true, "\(empty?.message ?? "")")
    }

    @Test("a kind the offline list does not know is refused when discovery says it is cluster-scoped")
    func discoveryDecides() async throws {
        let manifests = try ManifestLoader.load(yaml: """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings}
            ---
            apiVersion: v1
            kind: Node
            metadata: {name: intruder}
            """, file: "extra.yaml")
        try await SimulatedCluster.with(options: .init(nodes: 1)) { sim in
            let api = try SimSupport.api(sim)
            let error = await #expect(throws: KubeError.self) { try await ManifestScope.refuseClusterScoped(manifests, api: api) }
            #expect(error?.message.contains("refuses cluster-scoped ones") == true && error?.message.contains("Node/intruder (extra.yaml line 5)") == true,
                    "\(error?.message ?? "")")
            #expect(error?.message.contains("ConfigMap") == false)
            await #expect(throws: Never.self) { try await ManifestScope.refuseClusterScoped([manifests[0]], api: api) }
        }
    }
}
