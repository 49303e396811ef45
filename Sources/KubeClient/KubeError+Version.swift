extension KubeError {
    /// Every Kubernetes API server answers `GET /version`. A 404 there means the kubeconfig's server is some
    /// other HTTP server (or a path prefix is wrong): the cluster was not reached (exit 3), rather than an object
    /// missing from it (`notFound`, exit 1).
    func versionNotFoundIsNotKubernetes(server: String) -> KubeError {
        guard code == .notFound else { return self }
        return KubeError(.badResponse,
                         "\(message) — \(server) answers GET /version with 404, which no Kubernetes API server does; "
                             + "check the server URL in the kubeconfig (is it a Kubernetes API server, with no extra path?)",
                         status: status)
    }
}
