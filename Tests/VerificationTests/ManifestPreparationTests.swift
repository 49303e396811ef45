import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import Testing
@testable import Verification

/// The rewrites a run makes to the real manifests in `manifests/`, checked on the objects they produce.
@Suite("Manifest preparation")
struct ManifestPreparationTests {
    static let directory = RepositoryPaths.root.appendingPathComponent("manifests").path

    func prepared(_ pattern: Pattern, _ preparation: (inout ManifestPreparation) -> Void = { _ in }) throws -> [Manifest] {
        var prep = ManifestPreparation(pattern: pattern, namespace: "kverify-abc123", runID: "abc123", nodes: 4)
        preparation(&prep)
        let manifests = try pattern.manifestFiles.flatMap { try ManifestLoader.load(file: "\(Self.directory)/\($0)") }
        return prep.prepare(manifests)
    }

    func env(_ container: JSONValue, _ name: String) -> String? {
        container["env"]?.arrayValue?.first { $0["name"]?.stringValue == name }?["value"]?.stringValue
    }

    @Test("every object lands in the run namespace with the run label, pod templates included", arguments: Pattern.allCases)
    func namespaceAndLabels(pattern: Pattern) throws {
        let objects = try prepared(pattern)
        #expect(objects.map(\.kind).sorted() == ["Deployment", pattern.workloadKind, "Service", "Service", "Service"].sorted())
        for object in objects {
            #expect(object.namespace == "kverify-abc123", "\(object.origin)")
            #expect(object.object.value(at: ["metadata", "labels", "kverify.io/run"])?.stringValue == "abc123", "\(object.origin)")
        }
        for workload in objects where workload.kind != "Service" {
            #expect(workload.object.value(at: ["spec", "template", "metadata", "labels", "kverify.io/run"])?.stringValue == "abc123")
        }
    }

    @Test("fixed nodePorts are removed so concurrent runs do not clash", arguments: Pattern.allCases)
    func nodePortsStripped(pattern: Pattern) throws {
        let services = try prepared(pattern).filter { $0.kind == "Service" }
        let ports = services.flatMap { $0.object.value(at: ["spec", "ports"])?.arrayValue ?? [] }
        #expect(ports.count == 3)
        #expect(ports.allSatisfy { $0["nodePort"] == nil })
        #expect(ports.compactMap { $0["port"]?.intValue }.sorted() == [6379, 8000, 9091])
    }

    @Test("stripNodePorts false keeps the manifests' fixed nodePorts")
    func fixedNodePorts() throws {
        let services = try prepared(.daemonset) { $0.stripNodePorts = false }.filter { $0.kind == "Service" }
        let ports = services.flatMap { $0.object.value(at: ["spec", "ports"])?.arrayValue ?? [] }.compactMap { $0["nodePort"]?.intValue }
        #expect(ports.sorted() == [30379, 30800, 30991])
    }

    @Test("images, the TTL and env overrides reach the app containers; Redis keeps its own")
    func imagesAndEnvironment() throws {
        let objects = try prepared(.daemonset) {
            $0.appImage = "example/app:1"
            $0.redisImage = "example/redis:2"
            $0.redisTTLSeconds = 7
            $0.environment = [.init(container: "app", name: "EXPORTER_MODE", value: "default"),
                              .init(container: nil, name: "EXTRA", value: "x")]
        }
        let daemonSet = try #require(objects.first { $0.kind == "DaemonSet" })
        let containers = daemonSet.object.value(at: ["spec", "template", "spec", "containers"])?.arrayValue ?? []
        let initContainers = daemonSet.object.value(at: ["spec", "template", "spec", "initContainers"])?.arrayValue ?? []
        #expect((containers + initContainers).map { $0["image"]?.stringValue } == ["example/app:1", "example/app:1", "example/app:1"])
        let app = try #require(containers.first { $0["name"] == "app" })
        let exporter = try #require(containers.first { $0["name"] == "prometheus-exporter" })
        #expect(env(app, "REDIS_TTL_SECONDS") == "7")
        #expect(env(exporter, "REDIS_TTL_SECONDS") == "7")
        #expect(env(app, "EXPORTER_MODE") == "default")
        #expect(env(exporter, "EXPORTER_MODE") == "sidecar")
        #expect(env(exporter, "EXTRA") == "x")
        // The prefix keeps its $(POD_NAME) reference and its place after POD_NAME.
        let names = app["env"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(try #require(names.firstIndex(of: "POD_NAME")) < #require(names.firstIndex(of: "REDIS_KEY_PREFIX")))
        let redis = try #require(objects.first { $0.kind == "Deployment" && $0.name == "redis" })
        #expect(redis.object.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["image"]?.stringValue == "example/redis:2")
        #expect(redis.object.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["env"] == nil)
    }

    @Test("the sidecar Deployment gets one replica per node; Redis stays at one")
    func replicas() throws {
        let objects = try prepared(.sidecar)
        #expect(objects.first { $0.name == "gunicorn-app-with-sidecar" }?.object.value(at: ["spec", "replicas"])?.intValue == 4)
        #expect(objects.first { $0.name == "redis" }?.object.value(at: ["spec", "replicas"])?.intValue == 1)
    }

    @Test("a pod's key prefix is REDIS_KEY_PREFIX with $(POD_NAME) expanded")
    func keyPrefix() throws {
        let daemonSet = try #require(try prepared(.daemonset).first { $0.kind == "DaemonSet" })
        var pod: JSONValue = ["metadata": ["name": "ds-x7k2p", "namespace": "kverify-abc123"], "spec": ["nodeName": "worker"]]
        pod.set(["spec", "containers"], to: daemonSet.object.value(at: ["spec", "template", "spec", "containers"]))
        #expect(PodTarget.keyPrefix(podObject: pod) == "gunicorn-ds-x7k2p")
    }
}
