import Foundation
import KVerifyTestSupport
import Testing
import Yams

/// charts/kverify-demo, rendered by charts/render.py because helm is not installable here: for the default values it
/// renders exactly the objects in manifests/, overrides reach the fields they name, and the renderer refuses what it
/// does not implement instead of rendering it wrongly.
@Suite("charts/kverify-demo")
struct ChartTests {
    static let root = RepositoryPaths.root
    static let chart = root.appendingPathComponent("charts/kverify-demo")

    struct Rendered {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `python3 charts/render.py CHART --set …` with its output in files (no pipe to fill up).
    static func render(chart: URL = chart, _ sets: [String] = []) throws -> Rendered {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-render-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout"), err = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("charts/render.py").path, chart.path]
            + sets.flatMap { ["--set", $0] }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        process.waitUntilExit()
        return Rendered(
            status: process.terminationStatus,
            stdout: try String(contentsOf: out, encoding: .utf8),
            stderr: try String(contentsOf: err, encoding: .utf8))
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

    @Test("the default values render exactly the objects in manifests/", arguments: [
        ([], ["daemonset.yaml", "redis.yaml"]),
        (["mode=daemonset"], ["daemonset.yaml", "redis.yaml"]),
        (["mode=sidecar"], ["sidecar.yaml", "redis.yaml"]),
    ])
    func defaultsEqualManifests(sets: [String], files: [String]) throws {
        let rendered = try Self.render(sets)
        try #require(rendered.status == 0, "render.py: \(rendered.stderr)")
        let chart = try Self.objects(rendered.stdout, from: "render.py \(sets)")
        let expected = try Self.manifests(files)
        #expect(chart.keys.sorted() == expected.keys.sorted())
        #expect(expected.count == 5)
        for (key, object) in expected {
            guard let renderedObject = chart[key] else { continue }
            let found = Self.differences(renderedObject, object)
            #expect(found.isEmpty, "\(key) rendered ≠ manifests/:\n\(found.joined(separator: "\n"))")
        }
    }

    @Test("overridden values reach every field they name, in both modes", arguments: ["daemonset", "sidecar"])
    func overrides(mode: String) throws {
        let rendered = try Self.render([
            "mode=\(mode)", "nodes=5", "images.app=registry.example/kverify/app:1.2", "images.redis=redis:7.4",
            "ttlSeconds=60", "redis.port=6380", "redis.keyPrefix=demo", "nodePorts.metrics=31991",
            "resources.exporter.limits.memory=200Mi",
        ])
        try #require(rendered.status == 0, "render.py: \(rendered.stderr)")
        let objects = try Self.objects(rendered.stdout, from: "render.py")
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

    @Test("a mistyped mode fails the render instead of rendering Redis alone")
    func unknownMode() throws {
        let rendered = try Self.render(["mode=sidecars"])
        #expect(rendered.status == 1)
        #expect(rendered.stdout.isEmpty)
        #expect(rendered.stderr.contains("templates/validate.yaml:4:1: fail: values: mode must be daemonset or sidecar"),
                "\(rendered.stderr)")
    }

    /// A scratch copy of the chart with one template, or one values.yaml, replaced.
    static func withScratchChart<T>(template: String? = nil, values: String? = nil, _ body: (URL) throws -> T) throws -> T {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-chart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("templates"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: chart.appendingPathComponent("Chart.yaml"), to: scratch.appendingPathComponent("Chart.yaml"))
        try (values ?? String(contentsOf: chart.appendingPathComponent("values.yaml"), encoding: .utf8))
            .write(to: scratch.appendingPathComponent("values.yaml"), atomically: true, encoding: .utf8)
        try (template ?? "x: {{ .Values.mode }}\n")
            .write(to: scratch.appendingPathComponent("templates/t.yaml"), atomically: true, encoding: .utf8)
        return try body(scratch)
    }

    @Test("the renderer refuses template constructs outside its subset, naming file, line and column", arguments: [
        ("image: {{ .Values.images.app | upper }}", "templates/t.yaml:1:8"),
        ("{{ toYaml .Values.resources }}", "templates/t.yaml:1:1"),
        ("a: 1\n{{ include \"kverify.labels\" . }}", "templates/t.yaml:2:1"),
        ("{{- range .Values.images }}x{{- end }}", "templates/t.yaml:1:1"),
        ("{{ if .Values.mode }}x{{ end }}", "templates/t.yaml:1:1"),
        ("{{ if eq .Values.mode \"sidecar\" }}x{{ else }}y{{ end }}", "templates/t.yaml:1:36"),
        ("name: {{ .Release.Name }}", "templates/t.yaml:1:7"),
        ("{{ $mode := .Values.mode }}", "templates/t.yaml:1:1"),
        ("{{ if eq .Values.mode \"sidecar\" }}x", "templates/t.yaml:1:1"),
    ])
    func rejectsTemplateConstructs(template: String, position: String) throws {
        let rendered = try Self.withScratchChart(template: template) { try Self.render(chart: $0) }
        #expect(rendered.status == 2, "\(template): \(rendered.stderr)")
        #expect(rendered.stdout.isEmpty)
        #expect(rendered.stderr.hasPrefix("render.py: \(position): "), "\(template): \(rendered.stderr)")
    }

    @Test("the renderer refuses values.yaml beyond block mappings of unambiguous scalars", arguments: [
        ("mode: daemonset\nimages:\n  - app\n", "values.yaml:3"),
        ("mode: daemonset\nimages: {app: x}\n", "values.yaml:2"),
        ("mode: yes\n", "values.yaml:1"),          // YAML 1.1 (helm) reads a bool
        ("mode: 1.10\n", "values.yaml:1"),         // a float to helm: 1.1
        ("mode: &m daemonset\n", "values.yaml:1"),
        ("mode: |\n  daemonset\n", "values.yaml:1"),
    ])
    func rejectsValues(values: String, position: String) throws {
        let rendered = try Self.withScratchChart(values: values) { try Self.render(chart: $0) }
        #expect(rendered.status == 2, "\(values): \(rendered.stderr)")
        #expect(rendered.stderr.hasPrefix("render.py: \(position): "), "\(values): \(rendered.stderr)")
    }

    @Test("a value the template reads but nobody set fails the render (helm would print nothing)")
    func missingValue() throws {
        let rendered = try Self.withScratchChart(template: "x: {{ .Values.images.sidecar }}\n") { try Self.render(chart: $0) }
        #expect(rendered.status == 1)
        #expect(rendered.stderr.contains("templates/t.yaml:1:4: .Values.images.sidecar is not set"), "\(rendered.stderr)")
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
        #expect(paths.count == 23)
        for path in paths {
            // resources.<container>.… rows may be documented together as one pattern.
            let documented = readme.contains("`\(path)`")
                || (path.hasPrefix("resources.") && readme.contains("`resources.\(path.split(separator: ".")[1]).*`"))
            #expect(documented, "charts/kverify-demo/README.md does not document \(path)")
        }
    }
}
