import Foundation
import KVerifyTestSupport
import KubeClient
import KubeConfig
import KubeSim
import SimFaults
import SimStore
import Verification

/// Clients for a simulated cluster, through either backend, exactly as for a real one (a kubeconfig).
enum SimSupport {
    enum Backend: String, CaseIterable, Sendable { case api, kubectl }

    static func api(_ sim: SimulatedCluster, _ backend: Backend = .api) throws -> any KubeAPI {
        let configuration = try KubeConfigLoader().load(.init(kubeconfig: sim.kubeconfigPath))
        switch backend {
        case .api: return RESTBackend(configuration: configuration)
        case .kubectl: return KubectlBackend(configuration: configuration)
        }
    }

    static let manifestsDirectory = RepositoryPaths.root.appendingPathComponent("manifests").path

    static func manifests(_ files: [String]) throws -> [Manifest] {
        try files.flatMap { try ManifestLoader.load(file: "\(manifestsDirectory)/\($0)") }
    }

    /// Whether the run namespace still exists (a 404 means cleanup worked).
    static func namespaceExists(_ name: String, api: any KubeAPI) async throws -> Bool {
        do {
            _ = try await api.get(.namespaces, name: name, namespace: nil)
            return true
        } catch let error as KubeError where error.code == .notFound {
            return false
        }
    }
}
