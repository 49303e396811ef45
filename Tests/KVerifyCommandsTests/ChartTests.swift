import Foundation
import KVerifyTestSupport
import Processes
import Testing
import Yams

/// charts/kverify-demo, rendered and linted by the real helm 3 (scripts/bootstrap.sh installs it into .tools/bin):
/// for the default values it renders exactly the objects in manifests/, overrides reach the fields they name, and
/// a mistyped mode fails the render.
@Suite("charts/kverify-demo")
struct ChartTests {
    static let root = RepositoryPaths.root
    static let chart = root.appendingPathComponent("charts/kverify-demo")

    struct Rendered {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The bootstrap's helm, else the one on PATH.
    static var helm: String {
        let installed = root.appendingPathComponent(".tools/bin/helm").path
        return FileManager.default.isExecutableFile(atPath: installed) ? installed : "helm"
    }

    /// Runs `helm ARGUMENTS` with a scratch HOME, so no user's helm configuration or cache takes part.
    static func helm(_ arguments: [String]) async throws -> Rendered {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-helm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home.path
        let result = try await ProcessRunner.run(helm, arguments: arguments, environment: environment, timeout: .seconds(120))
        return Rendered(status: result.signal.map { 128 + $0 } ?? result.exitCode, stdout: String(decoding: result.stdout, as: UTF8.self),
                        stderr: String(decoding: result.stderr, as: UTF8.self))
    }

    /// `helm template kverify CHART --skip-tests --set …`, as `kverify daemonset|sidecar --chart` runs it.
    static func render(chart: URL = chart, _ sets: [String] = []) async throws -> Rendered {
        try await helm(["template", "kverify", chart.path, "--skip-tests"] + sets.flatMap { ["--set", $0] })
    }

    /// The objects of a YAML stream by "Kind/name". Iterates the parser itself: a broken document throws with its
    /// position instead of silently ending the stream (the `load_all` trap).
    static func objects(_ yaml: String, from source: String) throws -> [String: [String: Any]] {
        var objects: [String: [String: Any]] = [:]
        let parser = try Parser(yaml: yaml)
        while let node = try parser.nextRoot() {
            guard let object = node.any as? [String: Any] else { continue }  // an empty or comment-only document
            let name = ((object["metadata"] as? [String: Any])?["name"] as? String) ?? "?"
            let key = "\(object["kind"] as? String ?? "?")/\(name)"
            #expect(objects[key] == nil, "\(source): \(key) twice")
            objects[key] = object
        }
        return objects
    }

    static func manifests(_ files: [String]) throws -> [String: [String: Any]] {
        try files.reduce(into: [:]) { all, file in
            let text = try String(contentsOf: root.appendingPathComponent("manifests/\(file)"), encoding: .utf8)
            all.merge(try objects(text, from: file)) { first, _ in first }
        }
    }

    /// Every place two parsed YAML trees differ, as "path: left ≠ right". Key order is ignored (as by the API
    /// server); scalars compare by type and value, so "6379" (a string) differs from 6379 (an integer).
    static func differences(_ left: Any, _ right: Any, at path: String = "") -> [String] {
        switch (left, right) {
        case let (left as [String: Any], right as [String: Any]):
            return Set(left.keys).union(right.keys).sorted().flatMap { key -> [String] in
                switch (left[key], right[key]) {
                case let (l?, r?): return differences(l, r, at: "\(path).\(key)")
                case (nil, _): return ["\(path).\(key): missing on the left"]
                case (_, nil): return ["\(path).\(key): missing on the right"]
                }
            }
        case let (left as [Any], right as [Any]):
            guard left.count == right.count else { return ["\(path): \(left.count) items ≠ \(right.count)"] }
            return zip(left, right).enumerated().flatMap { differences($1.0, $1.1, at: "\(path)[\($0)]") }
        default:
            let l = "\(type(of: left)) \(left)", r = "\(type(of: right)) \(right)"
            return l == r ? [] : ["\(path): \(l) ≠ \(r)"]
        }
    }

    static func podSpec(_ object: [String: Any]?) -> [String: Any] {
        ((object?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
    }

    /// Init containers first, then containers.
    static func containers(_ object: [String: Any]?) -> [[String: Any]] {
        let pod = podSpec(object)
        return (pod["initContainers"] as? [[String: Any]] ?? []) + (pod["containers"] as? [[String: Any]] ?? [])
    }

    static func env(_ container: [String: Any], _ name: String) -> Any? {
        (container["env"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["value"]
    }

    @Test("the default values render exactly the objects in manifests/, and each exporter mode its files in manifests/modes/", arguments: [
        ([], ["daemonset.yaml", "redis.yaml"], 5),
        (["mode=daemonset"], ["daemonset.yaml", "redis.yaml"], 5),
        (["mode=sidecar"], ["sidecar.yaml", "redis.yaml"], 5),
        (["exporter.mode=sidecar", "mode=sidecar"], ["sidecar.yaml", "redis.yaml"], 5),
        (["exporter.mode=embedded"], ["modes/embedded/daemonset.yaml"], 5),
        (["exporter.mode=embedded", "mode=sidecar"], ["modes/embedded/sidecar.yaml"], 5),
        (["exporter.mode=multiprocess"], ["modes/multiprocess/daemonset.yaml"], 3),
        (["exporter.mode=multiprocess", "mode=sidecar"], ["modes/multiprocess/sidecar.yaml"], 3),
        (["exporter.mode=yaml"], ["modes/yaml/daemonset.yaml"], 6),
        (["exporter.mode=yaml", "mode=sidecar"], ["modes/yaml/sidecar.yaml"], 6),
    ])
    func defaultsEqualManifests(sets: [String], files: [String], count: Int) async throws {
        let rendered = try await Self.render(sets)
        try #require(rendered.status == 0, "helm template: \(rendered.stderr)")
        let chart = try Self.objects(rendered.stdout, from: "helm template \(sets)")
        let expected = try Self.manifests(files)
        #expect(chart.keys.sorted() == expected.keys.sorted())
        #expect(expected.count == count)
        for (key, object) in expected {
            guard let renderedObject = chart[key] else { continue }
            let found = Self.differences(renderedObject, object)
            #expect(found.isEmpty, "\(key) rendered ≠ manifests/:\n\(found.joined(separator: "\n"))")
        }
    }

    @Test("overridden values reach every field they name, in both modes", arguments: ["daemonset", "sidecar"])
    func overrides(mode: String) async throws {
        let rendered = try await Self.render([
            "mode=\(mode)", "nodes=5", "images.app=registry.example/kverify/app:1.2", "images.redis=redis:7.4",
            "ttlSeconds=60", "redis.port=6380", "redis.keyPrefix=demo", "nodePorts.metrics=31991",
            "resources.exporter.limits.memory=200Mi",
        ])
        try #require(rendered.status == 0, "helm template: \(rendered.stderr)")
        let objects = try Self.objects(rendered.stdout, from: "helm template")
        let workload = try #require(objects[mode == "sidecar" ? "Deployment/gunicorn-app-with-sidecar"
                                                             : "DaemonSet/gunicorn-prometheus-exporter-daemonset"])
        let replicas = (workload["spec"] as? [String: Any])?["replicas"]
        if mode == "sidecar" { #expect(replicas as? Int == 5) } else { #expect(replicas == nil) }

        let containers = Self.containers(workload)
        #expect(containers.map { $0["name"] as? String } == ["wait-for-redis", "app", "prometheus-exporter"])
        for container in containers {
            let name = container["name"] as? String ?? "?"
            #expect(container["image"] as? String == "registry.example/kverify/app:1.2", "\(name)")
            #expect(Self.env(container, "REDIS_PORT") as? String == "6380", "\(name)")
            if name != "wait-for-redis" {
                #expect(Self.env(container, "REDIS_TTL_SECONDS") as? String == "60", "\(name)")
                #expect(Self.env(container, "REDIS_KEY_PREFIX") as? String == "demo-$(POD_NAME)", "\(name)")
            }
        }
        let exporterLimits = (containers.last?["resources"] as? [String: Any])?["limits"] as? [String: Any]
        #expect(exporterLimits?["memory"] as? String == "200Mi")
        let appLimits = (containers[1]["resources"] as? [String: Any])?["limits"] as? [String: Any]
        #expect(appLimits?["memory"] as? String == "256Mi", "only the exporter's limit was overridden")

        #expect(Self.containers(objects["Deployment/redis"]).first?["image"] as? String == "redis:7.4")
        let redisPort = ((objects["Service/redis-service"]?["spec"] as? [String: Any])?["ports"] as? [[String: Any]])?.first
        #expect(redisPort?["port"] as? Int == 6380)
        #expect(redisPort?["targetPort"] as? String == "redis", "Redis itself still listens on its named port")
        let metricsPort = ((objects["Service/gunicorn-metrics"]?["spec"] as? [String: Any])?["ports"] as? [[String: Any]])?.first
        #expect(metricsPort?["nodePort"] as? Int == 31991)
    }

    @Test("a mistyped mode or exporter mode fails the render with the chart's own message instead of rendering part of it", arguments: [
        ("mode=sidecars", "values: mode must be daemonset or sidecar"),
        ("exporter.mode=file", "values: exporter.mode must be one of sidecar, embedded, multiprocess, yaml"),
    ])
    func unknownMode(set: String, message: String) async throws {
        let rendered = try await Self.render([set])
        #expect(rendered.status == 1)
        #expect(rendered.stdout.isEmpty)
        #expect(rendered.stderr.contains("templates/validate.yaml"), "\(rendered.stderr)")
        #expect(rendered.stderr.contains(message), "\(rendered.stderr)")
    }

    @Test("helm lint passes the chart and fails a broken copy of it, naming the template")
    func lint() async throws {
        let clean = try await Self.helm(["lint", Self.chart.path])
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("1 chart(s) linted, 0 chart(s) failed"), "\(clean.stdout)")

        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-chart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.copyItem(at: Self.chart, to: scratch)
        try "x: {{ .Values.mode | nosuchfunction }}\n".write(to: scratch.appendingPathComponent("templates/broken.yaml"),
                                                            atomically: false, encoding: .utf8)
        let broken = try await Self.helm(["lint", scratch.path])
        #expect(broken.status == 1, "\(broken.stdout)\(broken.stderr)")
        #expect((broken.stdout + broken.stderr).contains("templates/broken.yaml"), "\(broken.stdout)\(broken.stderr)")
        #expect((broken.stdout + broken.stderr).contains("nosuchfunction"), "\(broken.stdout)\(broken.stderr)")
    }

    @Test("the chart README documents every value in values.yaml")
    func readmeListsValues() throws {
        let values = try #require(try Yams.load(yaml: String(contentsOf: Self.chart.appendingPathComponent("values.yaml"),
                                                             encoding: .utf8)) as? [String: Any])
        func leaves(_ map: [String: Any], _ prefix: String) -> [String] {
            map.flatMap { key, value in
                (value as? [String: Any]).map { leaves($0, "\(prefix)\(key).") } ?? ["\(prefix)\(key)"]
            }
        }
        let readme = try String(contentsOf: Self.chart.appendingPathComponent("README.md"), encoding: .utf8)
        let paths = leaves(values, "")
        #expect(paths.count == 24)
        for path in paths {
            // resources.<container>.… rows may be documented together as one pattern.
            let documented = readme.contains("`\(path)`")
                || (path.hasPrefix("resources.") && readme.contains("`resources.\(path.split(separator: ".")[1]).*`"))
            #expect(documented, "charts/kverify-demo/README.md does not document \(path)")
        }
    }
}
