import Findings
import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import Processes
import Testing
@testable import Verification

/// Reading the exporter's settings and mode from manifests: the bundled files of every mode, shapes of other
/// teams, YAML from a ConfigMap with env winning, and configurations the exporter would refuse — named before any
/// cluster is contacted.
@Suite("Exporter settings and mode from the manifests")
struct ExporterConfigTests {
    static func objects(_ yaml: String) throws -> [JSONValue] { try ManifestLoader.load(yaml: yaml, file: "test.yaml").map(\.object) }

    static func config(_ yaml: String, kind: String = "DaemonSet") throws -> ExporterConfig? {
        let objects = try objects(yaml)
        let workload = try #require(objects.first { $0["kind"]?.stringValue == kind && !ManifestPreparation.isRedisWorkload($0) })
        return ExporterConfig.read(workload: workload, manifests: objects)
    }

    static func bundled(_ path: String) throws -> String {
        try String(contentsOf: RepositoryPaths.root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("the generated manifests of every mode read as that mode, in both patterns", arguments: [
        ("manifests/daemonset.yaml", "DaemonSet", ExporterConfig.Mode.sidecar),
        ("manifests/sidecar.yaml", "Deployment", .sidecar),
        ("manifests/modes/embedded/daemonset.yaml", "DaemonSet", .embedded),
        ("manifests/modes/embedded/sidecar.yaml", "Deployment", .embedded),
        ("manifests/modes/multiprocess/daemonset.yaml", "DaemonSet", .multiprocess),
        ("manifests/modes/multiprocess/sidecar.yaml", "Deployment", .multiprocess),
        ("manifests/modes/yaml/daemonset.yaml", "DaemonSet", .embedded),
        ("manifests/modes/yaml/sidecar.yaml", "Deployment", .embedded),
    ])
    func bundledModes(path: String, kind: String, mode: ExporterConfig.Mode) throws {
        // The default mode's files go with manifests/redis.yaml (the Service REDIS_HOST names); each mode file is complete.
        let text = path.contains("/modes/") ? try Self.bundled(path) : try Self.bundled("manifests/redis.yaml") + "---\n" + Self.bundled(path)
        let config = try #require(try Self.config(text, kind: kind))
        #expect(config.problems.isEmpty, "\(config.problems)")
        #expect(config.mode == mode)
        #expect(config.container == "app")
        #expect(config.workers == 2)
        #expect(config.metricsContainer == (mode == .sidecar ? "prometheus-exporter" : nil))
        if path.contains("/yaml/") {
            // The YAML says 4 workers and prefix "gunicorn"; the container's env wins for both.
            #expect(config.yamlSource == "ConfigMap gunicorn-exporter-config key exporter.yaml at /etc/gunicorn-exporter/exporter.yaml")
            #expect(config.overridden == ["GUNICORN_WORKERS", "REDIS_KEY_PREFIX"])
            #expect(config.fromYAML.isSuperset(of: ["REDIS_ENABLED", "REDIS_HOST", "REDIS_PORT", "REDIS_TTL_SECONDS", "PROMETHEUS_METRICS_PORT"]))
            #expect(config.settings["REDIS_HOST"] == "redis-service" && config.settings["REDIS_TTL_SECONDS"] == "300")
            #expect(config.finding.observed?.contains("env wins for GUNICORN_WORKERS, REDIS_KEY_PREFIX") == true)
        } else {
            #expect(config.yamlSource == nil && config.fromYAML.isEmpty)
        }
    }

    /// Another team's shape: gunicorn in a container named `web` (found by its command), the exporter sidecar
    /// `metrics-agent` on 9300 (no port named metrics: found by PROMETHEUS_METRICS_PORT), settings in a ConfigMap
    /// under a key mapped by `items`, with a YAML that disables Redis and names a multiprocess directory.
    static let otherTeam = """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: shop-exporter}
        data:
          settings.yml: |
            exporter:
              prometheus: {metrics_port: 9300, bind_address: 0.0.0.0, multiproc_dir: /var/run/prom}
              gunicorn: {workers: 3}
              redis: {enabled: false, host: nowhere}
          LOGLEVEL: debug
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: shop}
        spec:
          selector: {matchLabels: {app: shop}}
          template:
            metadata: {labels: {app: shop}}
            spec:
              containers:
              - name: web
                image: shop/web:3
                args: ["gunicorn", "-c", "/srv/conf.py", "shop:app"]
                envFrom: [{configMapRef: {name: shop-exporter}, prefix: SHOP_}]
                env:
                - {name: YAML_CONFIG_PATH, value: /etc/shop/exporter.yaml}
                - {name: BASE, value: /var/run}
                - {name: PROMETHEUS_MULTIPROC_DIR, value: $(BASE)/prom}
                ports: [{containerPort: 8080}]
                securityContext: {readOnlyRootFilesystem: true}
                volumeMounts:
                - {name: settings, mountPath: /etc/shop/}
                - {name: prom, mountPath: /var/run/prom}
              volumes:
              - name: settings
                configMap: {name: shop-exporter, items: [{key: settings.yml, path: exporter.yaml}]}
              - {name: prom, emptyDir: {}}
        """

    @Test("another team's shape: gunicorn found by its command, YAML through a ConfigMap items mapping, $(VAR) expanded, env over YAML")
    func otherTeamShape() throws {
        let config = try #require(try Self.config(Self.otherTeam, kind: "Deployment"))
        #expect(config.problems.isEmpty, "\(config.problems)")
        #expect(config.container == "web")
        #expect(config.mode == .multiprocess)
        #expect(config.multiprocDir == "/var/run/prom")
        #expect(config.overridden == ["PROMETHEUS_MULTIPROC_DIR"])
        #expect(config.workers == 3)
        #expect(config.settings["SHOP_LOGLEVEL"] == "debug", "envFrom with its prefix")
        #expect(config.settings["REDIS_HOST"] == nil, "a disabled redis section sets nothing, as the exporter's loader")
        #expect(config.yamlSource == "ConfigMap shop-exporter key settings.yml at /etc/shop/exporter.yaml")
    }

    @Test("a sidecar is the container that declares the exporter's port, named or not")
    func sidecarByPortNumber() throws {
        let env = #"[{name: REDIS_ENABLED, value: "yes"}, {name: PROMETHEUS_METRICS_PORT, value: "9300"}]"#
        let yaml = Self.daemonSet(containers: """
            - {name: api, image: x, env: \(env), ports: [{name: http, containerPort: 8000}]}
            - {name: metrics-agent, image: y, env: \(env), ports: [{containerPort: 9300}]}
            """)
        let config = try #require(try Self.config(yaml))
        #expect(config.container == "api", "the container with the http port runs gunicorn")
        #expect(config.mode == .sidecar && config.metricsContainer == "metrics-agent")
        #expect(config.workers == nil, "no GUNICORN_WORKERS: the worker check has nothing to count against")
    }

    /// A DaemonSet `agent` with these containers (YAML list items, unindented) and volumes, after `extra`.
    static func daemonSet(containers: String, volumes: String = "", extra: String = "") -> String {
        let items = containers.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n")
        return """
        \(extra)apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent}
        spec:
          selector: {matchLabels: {app: a}}
          template:
            metadata: {labels: {app: a}}
            spec:
              containers:
        \(items)
              volumes: [\(volumes)]
        """
    }

    /// One container `app` with this env, mounts and root filesystem.
    static func withEnv(_ env: String, volumes: String = "", mounts: String = "", readOnlyRoot: Bool = true, extra: String = "") -> String {
        daemonSet(containers: """
            - name: app
              image: x
              env: \(env)
              securityContext: {readOnlyRootFilesystem: \(readOnlyRoot)}
              volumeMounts: [\(mounts)]
            """, volumes: volumes, extra: extra)
    }

    @Test("configurations the exporter would refuse or silently not serve are problems that name the setting and the fix", arguments: [
        (withEnv(#"[{name: PROMETHEUS_MULTIPROC_DIR, value: /tmp/mp}]"#),
         "PROMETHEUS_MULTIPROC_DIR=/tmp/mp is on no volume of container app, whose root filesystem is read-only"),
        (withEnv(#"[{name: PROMETHEUS_MULTIPROC_DIR, value: /tmp/mp}]"#, volumes: "{name: mp, emptyDir: {}}", mounts: "{name: mp, mountPath: /tmp/mp, readOnly: true}"),
         "PROMETHEUS_MULTIPROC_DIR=/tmp/mp is on read-only volume mp"),
        (withEnv(#"[{name: YAML_CONFIG_PATH, value: /etc/x/e.yaml}]"#), "YAML_CONFIG_PATH=/etc/x/e.yaml is on no volume of container app"),
        (withEnv(#"[{name: YAML_CONFIG_PATH, value: /etc/x/e.yaml}]"#, volumes: "{name: c, configMap: {name: cfg}}", mounts: "{name: c, mountPath: /etc/x}",
                 extra: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {other.yaml: 'a: 1'}\n---\n"),
         "names e.yaml in ConfigMap cfg, which has no such key (it has other.yaml)"),
    ])
    func problems(yaml: String, message: String) throws {
        let config = try #require(try Self.config(yaml))
        #expect(config.problems.contains { $0.contains(message) }, "\(config.problems)")
        #expect(config.finding.status == .fail)
    }

    @Test("REDIS_PASSWORD from a Secret of the files (stringData or base64 data) is read, kept out of settings and every description",
          arguments: ["stringData: {pass: hunter2-secret}", "data: {pass: aHVudGVyMi1zZWNyZXQ=}"])
    func passwordFromSecret(secretData: String) throws {
        let yaml = Self.withEnv(#"[{name: REDIS_ENABLED, value: "true"}, {name: REDIS_DB, value: "3"}, {name: REDIS_PASSWORD, valueFrom: {secretKeyRef: {name: login, key: pass}}}]"#,
                                extra: "apiVersion: v1\nkind: Secret\nmetadata: {name: login}\n\(secretData)\n---\n")
        let config = try #require(try Self.config(yaml))
        #expect(config.redisPassword == "hunter2-secret")
        #expect(config.redisDatabase == 3)
        #expect(config.settings["REDIS_PASSWORD"] == "(hidden)")
        for text in ["\(config)", String(reflecting: config), config.finding.observed ?? "", config.finding.detail ?? ""] {
            #expect(!text.contains("hunter2"), "\(text)")
        }
    }

    @Test("a REDIS_HOST Service that is not in the files is named before anything is applied; FQDNs, addresses and Services of the files pass")
    func redisHostService() throws {
        let env = #"[{name: REDIS_ENABLED, value: "true"}, {name: REDIS_HOST, value: "@host@"}]"#
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: cache}\nspec: {ports: [{port: 6379}]}\n---\n"
        let missing = try #require(try Self.config(Self.withEnv(env.replacingOccurrences(of: "@host@", with: "nosuch"), extra: service)))
        #expect(missing.problems == ["REDIS_HOST=nosuch names Service nosuch, which is not in the files: kverify applies them into a fresh "
            + "namespace, where no other Service exists, so the exporter could not reach Redis; add the Service to the files, or point "
            + "REDIS_HOST at a name with dots (an FQDN such as redis.shared.svc.cluster.local, or an address)"])
        for host in ["cache", "redis.shared.svc.cluster.local", "10.0.0.7", "localhost"] {
            let config = try #require(try Self.config(Self.withEnv(env.replacingOccurrences(of: "@host@", with: host), extra: service)))
            #expect(config.problems.isEmpty, "\(host): \(config.problems)")
        }
    }

    @Test("a writable root filesystem needs no volume for the multiprocess directory")
    func writableRoot() throws {
        let config = try #require(try Self.config(Self.withEnv(#"[{name: PROMETHEUS_MULTIPROC_DIR, value: /tmp/mp}]"#, readOnlyRoot: false)))
        #expect(config.problems.isEmpty && config.mode == .multiprocess)
    }

    @Test("neither REDIS_ENABLED nor PROMETHEUS_MULTIPROC_DIR in the files is a warning, not a failure: the image may set them")
    func modeFromImage() throws {
        let config = try #require(try Self.config(Self.withEnv(#"[{name: PROMETHEUS_METRICS_PORT, value: "9091"}]"#)))
        #expect(config.problems.isEmpty && config.mode == nil)
        #expect(config.finding.status == .warn)
        #expect(config.finding.detail?.contains("unless its image sets one, the exporter skips its metrics server") == true, "\(config.finding)")
    }

    @Test("pods without any of the exporter's variables are not read as exporter pods")
    func notAnExporter() throws {
        #expect(try Self.config(Self.withEnv(#"[{name: APP_BIND, value: "0.0.0.0:8000"}]"#)) == nil)
    }

    /// The loader's checks, in its order, with its messages (gunicorn_prometheus_exporter/config/loader.py).
    static let invalidYAML: [(String, String)] = [
        ("exporter: [unclosed", "Invalid YAML in configuration file"),
        ("- a\n- b\n", "Configuration file must contain a dictionary at the root level"),
        ("other: {}\n", "Configuration must contain 'exporter' section"),
        ("exporter: 3\n", "'exporter' section must be a dictionary"),
        ("exporter: {prometheus: {metrics_port: 1, bind_address: x}}\n", "Missing required section: exporter.gunicorn"),
        ("exporter: {prometheus: {bind_address: x}, gunicorn: {}}\n", "Missing required field: exporter.prometheus.metrics_port"),
        ("exporter: {prometheus: {metrics_port: 1, bind_address: x}, gunicorn: {}, redis: on}\n", "'exporter.redis' must be a dictionary"),
    ]

    @Test("an invalid exporter YAML is refused with the exporter loader's own message", arguments: invalidYAML)
    func invalidYAMLMessages(text: String, message: String) {
        #expect(throws: ExporterYAML.Invalid.self) { try ExporterYAML.settings(text) }
        do {
            _ = try ExporterYAML.settings(text)
        } catch {
            #expect("\(error)".hasPrefix(message), "\(error)")
        }
    }

    /// The same files, given to the real exporter: gunicorn refuses to start, and its error carries the message
    /// kverify reports. This is what ties kverify's reading of the YAML to the exporter's.
    @Test("the real exporter refuses the same YAML files with the same messages", arguments: invalidYAML)
    func realExporterAgrees(text: String, message: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-yaml-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("exporter.yaml")
        try text.write(to: file, atomically: false, encoding: .utf8)
        let python = RepositoryPaths.root.appendingPathComponent(".venv/bin/python").path
        let script = "from gunicorn_prometheus_exporter.hooks import load_yaml_config; load_yaml_config(\(String(reflecting: file.path)))"
        let result = try await ProcessRunner.run(python, arguments: ["-c", script], environment: ProcessInfo.processInfo.environment,
                                                           timeout: .seconds(60))
        #expect(result.exitCode != 0)
        #expect(String(decoding: result.stderr, as: UTF8.self).contains(message), "\(String(decoding: result.stderr, as: UTF8.self))")
    }

    @Test("a YAML that enables Redis gets the run's REDIS_TTL_SECONDS on the containers that read it, which wins over the YAML's")
    func preparationSetsTTLForYAMLRedis() throws {
        let manifests = try ManifestLoader.load(yaml: Self.bundled("manifests/modes/yaml/daemonset.yaml"), file: "daemonset.yaml")
        let prepared = ManifestPreparation(pattern: .daemonset, namespace: "ns", runID: "r1", nodes: 3, redisTTLSeconds: 17).prepare(manifests)
        let workload = try #require(prepared.first { $0.kind == "DaemonSet" })
        let app = try #require(workload.object.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first)
        let ttl = app["env"]?.arrayValue?.first { $0["name"]?.stringValue == "REDIS_TTL_SECONDS" }?["value"]?.stringValue
        #expect(ttl == "17")
        let config = try #require(ExporterConfig.read(workload: workload.object, manifests: prepared.map(\.object)))
        #expect(config.settings["REDIS_TTL_SECONDS"] == "17" && config.overridden.contains("REDIS_TTL_SECONDS"))
    }
}
