import ArgumentParser
import Findings
import KubeClient
import KubeConfig

/// Which way kverify talks to the cluster. Both give the same verdicts.
enum BackendChoice: String, ExpressibleByArgument, CaseIterable {
    /// The Kubernetes REST API over libcurl.
    case api
    /// The kubectl binary on PATH, with the same kubeconfig and context.
    case kubectl
}

/// `--kubeconfig --context --namespace --backend`: shared by every command that talks to a cluster.
struct ClusterOptions: ParsableArguments {
    @Option(help: "kubeconfig file (default: $KUBECONFIG, a ':'-separated merged list, then ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "kubeconfig context (default: its current-context).")
    var context: String?

    @Option(help: "Namespace (default: the context's, else 'default').")
    var namespace: String?

    @Option(help: "How to talk to the cluster: api (REST over libcurl) or kubectl.")
    var backend: BackendChoice = .api

    /// The configured client. - Throws: `KubeConfigError` (its exit code is decided in `ExitCodes`).
    func makeAPI() throws -> any KubeAPI {
        try Self.makeAPI(kubeconfig: kubeconfig, context: context, namespace: namespace, backend: backend)
    }

    /// The same, for commands that take these options in their own shape (`daemonset`, `sidecar`).
    static func makeAPI(kubeconfig: String?, context: String?, namespace: String?, backend: BackendChoice) throws -> any KubeAPI {
        let configuration = try KubeConfigLoader().load(.init(kubeconfig: kubeconfig, context: context, namespace: namespace))
        switch backend {
        case .api: return RESTBackend(configuration: configuration)
        case .kubectl: return KubectlBackend(configuration: configuration)
        }
    }
}
