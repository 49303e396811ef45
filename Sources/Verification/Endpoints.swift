import KubeClient
import KubeModel

/// Where kverify reaches a pod's exporter and app, and the rule that found each (the report says which).
public struct PodEndpoints: Sendable, Hashable, Codable {
    public struct Endpoint: Sendable, Hashable, Codable {
        public var port: Int
        public var path: String
        /// `pod annotation prometheus.io/port`, `container port named metrics (exporter)`, `--metrics-port`, …
        public var foundBy: String

        public init(port: Int, path: String, foundBy: String) {
            self.port = port
            self.path = path
            self.foundBy = foundBy
        }
    }

    public var metrics: Endpoint
    public var app: Endpoint
    /// The paths traffic is sent to, in turn (`--path`, default `/`).
    public var trafficPaths: [String]

    public init(metrics: Endpoint, app: Endpoint, trafficPaths: [String] = ["/"]) {
        self.metrics = metrics
        self.app = app
        self.trafficPaths = trafficPaths.isEmpty ? ["/"] : trafficPaths
    }

    /// The bundled manifests' ports, for callers that build targets by hand.
    public static let conventional = PodEndpoints(metrics: Endpoint(port: 9091, path: "/metrics", foundBy: "default"),
                                                  app: Endpoint(port: 8000, path: "/", foundBy: "default"))
}

/// Finds a pod's metrics and app endpoints from what the user deployed, in this order:
///
/// - metrics: `--metrics-port` (an explicit flag wins); the `prometheus.io/port` (+ `prometheus.io/path`)
///   annotations on the pod (its template); the same annotations on a Service selecting the pod; a container port
///   named `metrics`. The path is `--metrics-path`, else `prometheus.io/path`, else `/metrics`.
/// - app: `--app-port`; a container port named `http`; the first container port that is not the metrics port.
///
/// Works on a pod object and on a workload's pod template alike (both have `metadata` and `spec.containers`), so a
/// manifest without any endpoint is refused before the cluster is contacted.
public struct EndpointDiscovery: Sendable {
    public var metricsPort: Int?
    public var metricsPath: String?
    public var appPort: Int?
    public var trafficPaths: [String]

    public init(metricsPort: Int? = nil, metricsPath: String? = nil, appPort: Int? = nil, trafficPaths: [String] = ["/"]) {
        self.metricsPort = metricsPort
        self.metricsPath = metricsPath
        self.appPort = appPort
        self.trafficPaths = trafficPaths
    }

    /// - Parameters:
    ///   - pod: a pod, or a pod template (`metadata` + `spec`).
    ///   - services: the Services of the pod's namespace (from the manifests or the cluster).
    ///   - what: how to name the pod in an error (`pod/x`, `DaemonSet/y's pod template`).
    /// - Throws: `KubeError(.badManifest)` naming the pod and the three ways to declare a metrics endpoint.
    public func endpoints(of pod: JSONValue, services: [JSONValue], what: String) throws(KubeError) -> PodEndpoints {
        let containers = pod.value(at: ["spec", "containers"])?.arrayValue ?? []
        let annotations = pod.value(at: ["metadata", "annotations"])
        let metrics: PodEndpoints.Endpoint
        if let metricsPort {
            metrics = .init(port: metricsPort, path: path(annotations), foundBy: "--metrics-port")
        } else if let port = Self.annotatedPort(annotations) {
            metrics = .init(port: port, path: path(annotations), foundBy: "pod annotation prometheus.io/port")
        } else if let (service, port) = annotatedService(selecting: pod, in: services) {
            metrics = .init(port: port, path: path(service.value(at: ["metadata", "annotations"])),
                            foundBy: "annotation prometheus.io/port on Service \(service.value(at: ["metadata", "name"])?.stringValue ?? "?")")
        } else if let (container, port) = Self.namedPort("metrics", in: containers) {
            metrics = .init(port: port, path: path(nil), foundBy: "container port named metrics (\(container))")
        } else {
            throw KubeError(.badManifest, "\(what) declares no metrics endpoint kverify can find; declare one of: a "
                + "prometheus.io/port annotation (with prometheus.io/path) on the pod template or on a Service selecting the pods, "
                + "a container port named \"metrics\", or --metrics-port (with --metrics-path)")
        }
        let app: PodEndpoints.Endpoint
        if let appPort {
            app = .init(port: appPort, path: trafficPaths.first ?? "/", foundBy: "--app-port")
        } else if let (container, port) = Self.namedPort("http", in: containers) {
            app = .init(port: port, path: trafficPaths.first ?? "/", foundBy: "container port named http (\(container))")
        } else if let (container, port) = Self.allPorts(containers).first(where: { $0.1 != metrics.port }) {
            app = .init(port: port, path: trafficPaths.first ?? "/", foundBy: "first container port (\(container)); none is named http")
        } else {
            throw KubeError(.badManifest, "\(what) declares no app port kverify can send traffic to; name the app's container port "
                + "\"http\", or pass --app-port")
        }
        return PodEndpoints(metrics: metrics, app: app, trafficPaths: trafficPaths)
    }

    private func path(_ annotations: JSONValue?) -> String {
        if let metricsPath { return metricsPath.hasPrefix("/") ? metricsPath : "/" + metricsPath }
        if let annotated = annotations?["prometheus.io/path"]?.stringValue, !annotated.isEmpty {
            return annotated.hasPrefix("/") ? annotated : "/" + annotated
        }
        return "/metrics"
    }

    /// `prometheus.io/port`, unless `prometheus.io/scrape` says "false".
    static func annotatedPort(_ annotations: JSONValue?) -> Int? {
        guard let annotations, annotations["prometheus.io/scrape"]?.stringValue != "false",
              let text = annotations["prometheus.io/port"]?.stringValue, let port = Int(text), (1...65535).contains(port) else { return nil }
        return port
    }

    private func annotatedService(selecting pod: JSONValue, in services: [JSONValue]) -> (JSONValue, Int)? {
        let labels = pod.value(at: ["metadata", "labels"])?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        for service in services {
            guard let port = Self.annotatedPort(service.value(at: ["metadata", "annotations"])),
                  let selector = service.value(at: ["spec", "selector"])?.objectValue?.compactMapValues(\.stringValue),
                  !selector.isEmpty, selector.allSatisfy({ labels[$0.key] == $0.value }) else { continue }
            return (service, port)
        }
        return nil
    }

    private static func namedPort(_ name: String, in containers: [JSONValue]) -> (String, Int)? {
        for container in containers {
            for port in container["ports"]?.arrayValue ?? [] where port["name"]?.stringValue == name {
                if let number = port["containerPort"]?.intValue { return (container["name"]?.stringValue ?? "?", number) }
            }
        }
        return nil
    }

    private static func allPorts(_ containers: [JSONValue]) -> [(String, Int)] {
        containers.flatMap { container in
            (container["ports"]?.arrayValue ?? []).compactMap { port in
                port["containerPort"]?.intValue.map { (container["name"]?.stringValue ?? "?", $0) }
            }
        }
    }

    /// Refuses, before the cluster is contacted, an app workload whose pod template has no discoverable endpoint.
    public func check(_ manifests: [Manifest], pattern: Pattern) throws(KubeError) {
        let services = manifests.filter { $0.kind == "Service" }.map(\.object)
        for manifest in manifests where manifest.kind == pattern.workloadKind && !ManifestPreparation.isRedisWorkload(manifest.object) {
            guard let template = manifest.object.value(at: ["spec", "template"]) else { continue }
            _ = try endpoints(of: template, services: services, what: "\(manifest.kind)/\(manifest.name) (\(manifest.file))")
        }
    }
}
