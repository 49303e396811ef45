import Foundation
import KubeClient
import KubeModel
import Testing
import Verification

@Suite("Endpoint discovery from the user's pods and Services")
struct EndpointDiscoveryTests {
    static func object(_ json: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
    }

    static func pod(annotations: String = "{}", ports: String = #"[{"containerPort": 5000}]"#, exporterPorts: String = "[]") throws -> JSONValue {
        try object(#"""
            {"metadata": {"name": "p", "labels": {"tier": "web", "team": "shop"}, "annotations": \#(annotations)},
             "spec": {"containers": [{"name": "web", "ports": \#(ports)}, {"name": "exporter", "ports": \#(exporterPorts)}]}}
            """#)
    }

    @Test("annotations on the pod win over a port named metrics; the path comes from prometheus.io/path")
    func podAnnotation() throws {
        let pod = try Self.pod(annotations: #"{"prometheus.io/port": "9300", "prometheus.io/path": "stats"}"#,
                               exporterPorts: #"[{"name": "metrics", "containerPort": 9091}]"#)
        let found = try EndpointDiscovery().endpoints(of: pod, services: [], what: "pod/p")
        #expect(found.metrics == .init(port: 9300, path: "/stats", foundBy: "pod annotation prometheus.io/port"))
        #expect(found.app == .init(port: 5000, path: "/", foundBy: "first container port (web); none is named http"))
    }

    @Test("prometheus.io/scrape: \"false\" disables the pod's annotation; a Service selecting the pod supplies one")
    func serviceAnnotation() throws {
        let pod = try Self.pod(annotations: #"{"prometheus.io/scrape": "false", "prometheus.io/port": "9300"}"#)
        let other = try Self.object(#"{"metadata": {"name": "other", "annotations": {"prometheus.io/port": "1"}}, "spec": {"selector": {"tier": "db"}}}"#)
        let service = try Self.object(#"{"metadata": {"name": "shop-metrics", "annotations": {"prometheus.io/port": "9400"}}, "spec": {"selector": {"tier": "web"}}}"#)
        let found = try EndpointDiscovery().endpoints(of: pod, services: [other, service], what: "pod/p")
        #expect(found.metrics == .init(port: 9400, path: "/metrics", foundBy: "annotation prometheus.io/port on Service shop-metrics"))
    }

    @Test("named ports: metrics for the exporter, http for the app; flags override discovery")
    func namedPortsAndFlags() throws {
        let pod = try Self.pod(ports: #"[{"containerPort": 5000}, {"name": "http", "containerPort": 5001}]"#,
                               exporterPorts: #"[{"name": "metrics", "containerPort": 9091}]"#)
        let found = try EndpointDiscovery(trafficPaths: ["/a", "/b"]).endpoints(of: pod, services: [], what: "pod/p")
        #expect(found.metrics == .init(port: 9091, path: "/metrics", foundBy: "container port named metrics (exporter)"))
        #expect(found.app == .init(port: 5001, path: "/a", foundBy: "container port named http (web)"))
        #expect(found.trafficPaths == ["/a", "/b"])
        let flagged = try EndpointDiscovery(metricsPort: 7000, metricsPath: "m", appPort: 7001).endpoints(of: pod, services: [], what: "pod/p")
        #expect(flagged.metrics == .init(port: 7000, path: "/m", foundBy: "--metrics-port"))
        #expect(flagged.app.foundBy == "--app-port")
    }

    @Test("no way to find the metrics endpoint is a bad manifest naming the pod and the three ways")
    func nothingFound() throws {
        let pod = try Self.pod()
        #expect {
            try EndpointDiscovery().endpoints(of: pod, services: [], what: "DaemonSet/agent's pod template")
        } throws: { error in
            let message = (error as? KubeError)?.message ?? ""
            return (error as? KubeError)?.code == .badManifest && message.hasPrefix("DaemonSet/agent's pod template declares no metrics endpoint")
                && message.contains("--metrics-port")
        }
    }
}
