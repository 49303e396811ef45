import Foundation
import Processes
import KVerifyTestSupport
import Testing
import Yams

/// The manifests kverify applies: structural promises the end-to-end verifications rely on, and the defects of
/// the upstream manifests they must not repeat.
@Suite("manifests/")
struct ManifestTests {
    static let directory = RepositoryPaths.root.appendingPathComponent("manifests")

    static func objects(_ file: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        return try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
    }

    static func podSpec(_ object: [String: Any]) -> [String: Any]? {
        ((object["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
    }

    @Test("the generated pattern files and charts/kverify-demo are up to date with manifests/generate.py")
    func generated() async throws {
        let result = try await ProcessRunner.run(
            "python3", arguments: [Self.directory.appendingPathComponent("generate.py").path, "--check"],
            environment: ProcessInfo.processInfo.environment, timeout: .seconds(120))
        #expect(result.succeeded, "\(String(decoding: result.stdout + result.stderr, as: UTF8.self))")
    }

    @Test("each file holds the expected objects", arguments: [
        ("redis.yaml", ["Deployment/redis", "Service/redis-service"]),
        ("daemonset.yaml", ["DaemonSet/gunicorn-prometheus-exporter-daemonset", "Service/gunicorn-app", "Service/gunicorn-metrics"]),
        ("sidecar.yaml", ["Deployment/gunicorn-app-with-sidecar", "Service/gunicorn-app", "Service/gunicorn-metrics"]),
    ])
    func objects(file: String, expected: [String]) throws {
        let names = try Self.objects(file).map { "\($0["kind"] ?? "?")/\((($0["metadata"] as? [String: Any])?["name"]) ?? "?")" }
        #expect(names == expected)
    }

    @Test("every container has probes on its own ports, requests, limits and a locked-down securityContext",
          arguments: ["redis.yaml", "daemonset.yaml", "sidecar.yaml"])
    func containers(file: String) throws {
        for object in try Self.objects(file) {
            guard let pod = Self.podSpec(object) else { continue }
            let containers = (pod["containers"] as? [[String: Any]] ?? [])
            var declaredPorts: [Int] = []
            for container in containers {
                let name = container["name"] as? String ?? "?"
                let ports = (container["ports"] as? [[String: Any]] ?? [])
                declaredPorts += ports.compactMap { $0["containerPort"] as? Int }
                let portNames = Set(ports.compactMap { $0["name"] as? String })
                let readiness = try #require(container["readinessProbe"] as? [String: Any], "\(file) \(name): no readinessProbe")
                #expect(container["livenessProbe"] != nil, "\(file) \(name): no livenessProbe")
                // A probe names one of the container's own ports: upstream probed ports the container did not serve.
                let probePort = ((readiness["httpGet"] ?? readiness["tcpSocket"]) as? [String: Any])?["port"] as? String
                if let probePort { #expect(portNames.contains(probePort), "\(file) \(name): probe port \(probePort)") }
                let resources = try #require(container["resources"] as? [String: Any], "\(file) \(name): no resources")
                #expect(resources["requests"] != nil && resources["limits"] != nil, "\(file) \(name)")
                let security = try #require(container["securityContext"] as? [String: Any], "\(file) \(name): no securityContext")
                #expect(security["allowPrivilegeEscalation"] as? Bool == false)
                #expect(security["readOnlyRootFilesystem"] as? Bool == true)
            }
            // Upstream declared 9091 on two containers of one pod.
            #expect(Set(declaredPorts).count == declaredPorts.count, "\(file): duplicate container ports \(declaredPorts)")
        }
    }

    @Test("NodePorts agree with the ones scripts/lib/common.sh maps to the host")
    func nodePorts() throws {
        let common = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("scripts/lib/common.sh"), encoding: .utf8)
        func scriptPort(_ variable: String) -> Int? {
            common.split(separator: "\n").first { $0.contains("\(variable)=") }
                .flatMap { $0.split(separator: "=").last?.split(separator: " ").first }.flatMap { Int($0) }
        }
        var servicePorts: [String: Int] = [:]
        for file in ["redis.yaml", "daemonset.yaml", "sidecar.yaml"] {
            for object in try Self.objects(file) where object["kind"] as? String == "Service" {
                let name = (object["metadata"] as? [String: Any])?["name"] as? String ?? "?"
                let port = ((object["spec"] as? [String: Any])?["ports"] as? [[String: Any]])?.first?["nodePort"] as? Int
                servicePorts[name] = port
            }
        }
        #expect(servicePorts["redis-service"] == scriptPort("KVERIFY_REDIS_NODEPORT"))
        #expect(servicePorts["gunicorn-app"] == scriptPort("KVERIFY_APP_NODEPORT"))
        #expect(servicePorts["gunicorn-metrics"] == scriptPort("KVERIFY_METRICS_NODEPORT"))
        #expect(servicePorts["redis-service"] == 30379)
    }

    @Test("the sidecar Deployment puts one replica per node; the DaemonSet rolls out like kubectl expects")
    func placement() throws {
        let deployment = try #require(try Self.objects("sidecar.yaml").first)
        let pod = try #require(Self.podSpec(deployment))
        let spread = try #require((pod["topologySpreadConstraints"] as? [[String: Any]])?.first)
        #expect(spread["topologyKey"] as? String == "kubernetes.io/hostname")
        #expect(spread["whenUnsatisfiable"] as? String == "DoNotSchedule")
        let antiAffinity = (pod["affinity"] as? [String: Any])?["podAntiAffinity"] as? [String: Any]
        #expect(antiAffinity?["requiredDuringSchedulingIgnoredDuringExecution"] != nil)
        let daemonSet = try #require(try Self.objects("daemonset.yaml").first)
        let strategy = (daemonSet["spec"] as? [String: Any])?["updateStrategy"] as? [String: Any]
        #expect(strategy?["type"] as? String == "RollingUpdate")
        #expect((Self.podSpec(daemonSet)?["hostNetwork"] as? Bool) != true, "hostNetwork collides node ports across pods")
    }

    @Test("the sidecar pods tolerate exactly the kind control-plane taint; the DaemonSet pods tolerate nothing")
    func controlPlaneToleration() throws {
        // N replicas on an N-node kind cluster need node 0, the control plane tainted NoSchedule; the DaemonSet
        // pattern runs on workers only, so it must not gain the toleration.
        let deployment = try #require(try Self.objects("sidecar.yaml").first)
        let sidecar = try #require(Self.podSpec(deployment))
        let tolerations = try #require(sidecar["tolerations"] as? [[String: Any]])
        #expect(tolerations.count == 1)
        let toleration = try #require(tolerations.first)
        #expect(toleration["key"] as? String == "node-role.kubernetes.io/control-plane")
        #expect(toleration["operator"] as? String == "Exists")
        #expect(toleration["effect"] as? String == "NoSchedule")
        #expect(toleration["value"] == nil)
        let daemonSet = try #require(try Self.objects("daemonset.yaml").first)
        #expect(daemonSet["kind"] as? String == "DaemonSet")
        #expect(Self.podSpec(daemonSet)?["tolerations"] == nil)
    }

    @Test("each pod stores its metrics under its own Redis prefix (PIDs repeat across nodes)")
    func perPodPrefix() throws {
        for file in ["daemonset.yaml", "sidecar.yaml"] {
            let workload = try #require(try Self.objects(file).first)
            let pod = try #require(Self.podSpec(workload))
            for container in pod["containers"] as? [[String: Any]] ?? [] {
                let env = container["env"] as? [[String: Any]] ?? []
                let names = env.compactMap { $0["name"] as? String }
                let prefix = env.first { $0["name"] as? String == "REDIS_KEY_PREFIX" }?["value"] as? String
                #expect(prefix == "gunicorn-$(POD_NAME)", "\(file)")
                // $(POD_NAME) expands only if POD_NAME is defined earlier in the list.
                let podName = try #require(names.firstIndex(of: "POD_NAME"))
                #expect(podName < (names.firstIndex(of: "REDIS_KEY_PREFIX") ?? -1))
            }
        }
    }
}
