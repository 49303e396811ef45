import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import KubeSim
import SimAPIServer
import Testing

/// The sim's API server keeps its connections to pods alive for `…/proxy/…`, as kube-apiserver's transport does:
/// counted by the sim's own dial count, with the stub runtime (which answers with keep-alive).
@Suite("the API server's proxy reuses connections to pods", .simSlot)
struct ProxyPoolTests {
    @Test("20 GETs to a keep-alive pod take one dial; a pod deleted and created again is dialled anew and answers")
    func reusesAndRedials() async throws {
        try await SimulatedCluster.with(options: SimulatedCluster.Options(nodes: 2)) { sim in
            try await Workspace.with { workspace in
                let api = try workspace.backend(.rest, kubeconfig: sim.kubeconfigPath)
                let namespace = "pool-\(UInt32.random(in: 0...UInt32.max))"
                try await api.createNamespace(namespace)
                let pod = try ManifestLoader.load(yaml: """
                    apiVersion: v1
                    kind: Pod
                    metadata: {name: canned, namespace: \(namespace), labels: {role: canned}}
                    spec: {containers: [{name: c, image: "kverify/stub-exporter:1", ports: [{containerPort: 9300}]}]}
                    """, file: "canned.yaml")
                _ = try await SimContractFixture.waitForReadyPods(api, namespace: namespace, selector: "role=canned", count: 1,
                                                                  timeout: .seconds(60), afterFirstSync: { try await api.apply(pod) })
                let before = sim.traffic.proxyDials
                for _ in 0..<20 {
                    let body = String(decoding: try await api.proxyGet(pod: "canned", port: 9300, path: "metrics", namespace: namespace), as: UTF8.self)
                    #expect(body.contains("# TYPE gunicorn_worker_requests_total counter"))
                }
                #expect(sim.traffic.proxyDials - before == 1, "\(sim.traffic)")

                try await api.deleteAndWait(.pods, name: "canned", namespace: namespace, propagation: .background, timeout: .seconds(60))
                _ = try await SimContractFixture.waitForReadyPods(api, namespace: namespace, selector: "role=canned", count: 1,
                                                                  timeout: .seconds(60), afterFirstSync: { try await api.apply(pod) })
                let again = sim.traffic.proxyDials
                let body = String(decoding: try await api.proxyGet(pod: "canned", port: 9300, path: "metrics", namespace: namespace), as: UTF8.self)
                #expect(body.contains("# TYPE gunicorn_worker_requests_total counter"))
                // The old pod's connection closed with it (its stub stopped), whether or not the new pod got its IP.
                #expect(sim.traffic.proxyDials - again == 1, "\(sim.traffic)")
            }
        }
    }
}
