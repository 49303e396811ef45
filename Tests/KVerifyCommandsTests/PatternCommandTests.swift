import Foundation
import KVerifyTestSupport
import Testing

/// `kverify daemonset` / `kverify sidecar` run as a user runs them: the built executable.
@Suite("kverify daemonset and sidecar (CLI)")
struct PatternCommandTests {
    static func report(_ run: KVerifyRun) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "stdout: \(run.stdout)\nstderr: \(run.stderr)")
    }

    @Test("--help documents the phases, the fail-fast reasons and the exit codes", arguments: ["daemonset", "sidecar"])
    func help(command: String) async throws {
        let run = try await KVerifyRun.run([command, "--help"], timeout: .seconds(30))
        #expect(run.status == 0)
        for text in ["--nodes", "--sim", "--chart", "--keep", "--redis-addr", "CrashLoopBackOff", "EXIT CODES", "kverify.io/run", "ENDPOINTS",
                     "prometheus.io/port", "EXPORTER MODES", "PROMETHEUS_MULTIPROC_DIR", "YAML_CONFIG_PATH", "lifecycle", "QUIT and ABRT"] {
            #expect(run.stdout.contains(text), "\(text) missing from \(command) --help")
        }
    }

    @Test("--chart without helm on PATH is a usage error that says helm is required")
    func chartWithoutHelm() async throws {
        let run = try await KVerifyRun.run(["daemonset", "--chart", "charts/kverify-demo", "--sim"], environment: ["PATH": "/usr/bin/nonexistent"],
                                           timeout: .seconds(30))
        #expect(run.status == 2)
        #expect(run.stderr.contains("--chart charts/kverify-demo needs the helm binary on PATH (not found); install helm 3"), "\(run.stderr)")
        #expect(run.stderr.contains("scripts/bootstrap.sh puts helm 3.17 in .tools/bin"), "\(run.stderr)")
    }

    @Test("bad flags exit 2 naming the flag", arguments: [
        (["sidecar", "--env", "NOEQUALS"], "--env 'NOEQUALS': expected [container:]NAME=VALUE"),
        (["sidecar", "--namespace", "Bad_Prefix"], "--namespace 'Bad_Prefix'"),
        (["daemonset", "--redis-addr", "nohost"], "--redis-addr"),
        (["daemonset", "--nodes", "0"], "--nodes must be between 1 and 1000"),
        (["daemonset", "--faults", "sim/faults.example.yaml"], "--faults injects faults into the embedded sim: it needs --sim"),
        (["daemonset", "--sim", "--faults", "/nonexistent/faults.yaml"], "cannot read the faults file /nonexistent/faults.yaml"),
    ])
    func badFlags(arguments: [String], message: String) async throws {
        let run = try await KVerifyRun.run(arguments, timeout: .seconds(30))
        #expect(run.status == 2)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test("a broken manifest is exit 2 naming file, document and line, before any cluster is contacted")
    func brokenManifest() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-badmanifest-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "apiVersion: v1\nkind: Service\nmetadata: {name: redis-service}\n".write(to: directory.appendingPathComponent("redis.yaml"), atomically: false, encoding: .utf8)
        try "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: x\n  labels: [unclosed\n".write(
            to: directory.appendingPathComponent("daemonset.yaml"), atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["daemonset", "--manifests", directory.path, "--kubeconfig", "/nonexistent"], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("daemonset.yaml document 0"), "\(run.stderr)")
    }

    /// A copy of the checkout's manifests with `extra` appended to the pattern's file.
    static func manifests(daemonset: (String) -> String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-scope-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = RepositoryPaths.root.appendingPathComponent("manifests")
        try FileManager.default.copyItem(at: source.appendingPathComponent("redis.yaml"), to: directory.appendingPathComponent("redis.yaml"))
        let original = try String(contentsOf: source.appendingPathComponent("daemonset.yaml"), encoding: .utf8)
        try daemonset(original).write(to: directory.appendingPathComponent("daemonset.yaml"), atomically: false, encoding: .utf8)
        return directory
    }

    @Test("a Node appended to the pattern's manifests is refused with exit 2 naming it and its file, before the sim starts")
    func clusterScopedObjectRefused() async throws {
        let directory = try Self.manifests { $0 + "\n---\napiVersion: v1\nkind: Node\nmetadata: {name: intruder}\n" }
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "2", "--manifests", directory.path], timeout: .seconds(60))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("refuses cluster-scoped ones") && run.stderr.contains("Node/intruder (\(directory.path)/daemonset.yaml line "),
                "\(run.stderr)")
        #expect(!run.stdout.contains("preflight"), "no phase ran: \(run.stdout)")
    }

    @Test("a daemonset run whose files hold no DaemonSet fails at once with exit 2 naming what they hold")
    func wrongKindRefused() async throws {
        let directory = try Self.manifests { _ in
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "2", "--manifests", directory.path], timeout: .seconds(60))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("the daemonset pattern needs a DaemonSet") && run.stderr.contains("ConfigMap/settings (\(directory.path)/daemonset.yaml)"),
                "\(run.stderr)")
        #expect(!run.stdout.contains("preflight"), "no phase ran: \(run.stdout)")
    }

    @Test("--sim without its network shim is exit 2 with the build step, before the sim starts")
    func simWithoutShim() async throws {
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "2"], environment: ["KVERIFY_SIM_SHIM": "/nonexistent/libKVerifySimNet.so"],
                                           timeout: .seconds(60))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("the sim's network shim /nonexistent/libKVerifySimNet.so (KVERIFY_SIM_SHIM) does not exist: build it with `swift build --product KVerifySimNet`"),
                "\(run.stderr)")
        #expect(!run.stdout.contains("preflight"), "no phase ran: \(run.stdout)")
    }

    @Test("an unreachable cluster is exit 3, and nothing is attempted after preflight")
    func unreachable() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-pattern-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try TCPProbe.freePort()
        let kubeconfig = directory.appendingPathComponent("kubeconfig")
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "http://127.0.0.1:\(port)"}}]
            users: [{name: u, user: {token: t}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """.write(to: kubeconfig, atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["daemonset", "--kubeconfig", kubeconfig.path, "--output", "json"], timeout: .seconds(60))
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        let report = try Self.report(run)
        let phases = (report["phases"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(phases == ["exporter", "preflight", "cleanup"])
    }
}

/// Whole runs through the binary on simulated clusters (the sim's real kubelet runs the pods).
@Suite("kverify daemonset and sidecar on the sim (CLI)", .serialized)
struct PatternCommandSimTests {
    @Test("daemonset --sim --lifecycle-pods 2 verifies a 3-node cluster and renders one JUnit testcase per check and pod/node: every signal on both pods")
    func daemonSetJUnit() async throws {
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "--skip-expiry", "--lifecycle-pods", "2", "--output", "junit"],
                                           timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("failures=\"0\""))
        #expect(run.stdout.contains("<testcase classname=\"node.metrics\" name=\"node/kverify-sim-worker\"/>"))
        #expect(run.stdout.contains("<testcase classname=\"node.metrics\" name=\"node/kverify-sim-worker2\"/>"))
        #expect(run.stdout.contains("<testcase classname=\"cleanup.namespace\""))
        // One testcase per signal per pod: the two DaemonSet pods, one on each worker.
        for check in ["lifecycle.master", "lifecycle.ttin", "lifecycle.ttou", "lifecycle.hup", "lifecycle.usr1", "lifecycle.quit", "lifecycle.abort"] {
            let nodes = run.stdout.matches(of: /<testcase classname="([^"]+)" name="node\/(\S+) pod\/\S+/)
                .filter { $0.1 == check }.map { String($0.2) }
            #expect(nodes.sorted() == ["kverify-sim-worker", "kverify-sim-worker2"], "\(check): \(nodes)")
        }
        // The graceful delete goes to one pod; each of its containers' exits is a testcase of its own.
        let exits = run.stdout.matches(of: /<testcase classname="lifecycle.shutdown.exit" name="[^"]* container\/(\S+)"/).map { String($0.1) }
        #expect(exits.sorted() == ["app", "prometheus-exporter"], "\(exits)")
    }

    @Test("sidecar --sim through kubectl: 2 replicas on 2 nodes, JSON verdict pass")
    func sidecarKubectlJSON() async throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kcache-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: cache) }
        let run = try await KVerifyRun.run(["sidecar", "--sim", "--nodes", "2", "--backend", "kubectl", "--skip-expiry", "--output", "json"],
                                           environment: ["KUBECACHEDIR": cache.path], timeout: .seconds(240))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let report = try PatternCommandTests.report(run)
        let findings = try #require(report["findings"] as? [[String: Any]])
        // Pass; or warn only for a histogram caught mid-update and consistent on the re-scrape (PodScrape).
        let warnings = findings.filter { $0["status"] as? String == "warn" }.compactMap { $0["checkID"] as? String }
        #expect(report["verdict"] as? String == (warnings.isEmpty ? "pass" : "warn"))
        // …and the exporter's restart families that no signal increments (the lifecycle phase, through kubectl exec).
        #expect(warnings.contains("lifecycle.restart_families"), "\(warnings)")
        // A worker that hung in the exporter's signal handler (Lifecycle.workerSignal) is a warning naming gunicorn's kill,
        // and the keys it left without a TTL are its own warning.
        let hangWarnings = ["lifecycle.quit", "lifecycle.abort", "redis.ttl.killed-writer"]
        #expect(warnings.allSatisfy { ["exposition.histogram-consistent", "lifecycle.restart_families"].contains($0) || hangWarnings.contains($0) },
                "\(warnings)")
        for check in ["lifecycle.master", "lifecycle.ttin", "lifecycle.ttou", "lifecycle.hup", "lifecycle.usr1", "lifecycle.quit", "lifecycle.abort"] {
            let found = findings.filter { $0["checkID"] as? String == check }
            let statuses = found.compactMap { $0["status"] as? String }
            if statuses == ["warn"] {
                // Either outcome of the exporter's signal race: a hung worker killed by gunicorn, or an exit never counted.
                let observed = found[0]["observed"] as? String ?? ""
                #expect(["lifecycle.quit", "lifecycle.abort"].contains(check) && (observed.contains("WORKER TIMEOUT (pid:") || observed.contains("never counted")),
                        "\(found)")
            } else {
                #expect(statuses == ["pass"], "\(check): \(found)")
            }
        }
        let nodes = findings.filter { $0["checkID"] as? String == "node.metrics" }.compactMap { $0["subject"] as? String }
        #expect(nodes.sorted() == ["node/kverify-sim-control-plane", "node/kverify-sim-worker"])
    }

    @Test("--image-app with an image no node has: exit 1, the pull failure named per pod, cleanup done")
    func imagePullCLI() async throws {
        let run = try await KVerifyRun.run(["sidecar", "--sim", "--nodes", "2", "--image-app", "nosuch:1", "--output", "json"], timeout: .seconds(240))
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        let pods = findings.filter { $0["checkID"] as? String == "rollout.pod" && $0["status"] as? String == "fail" }
        #expect(!pods.isEmpty)
        #expect(pods.allSatisfy { ($0["observed"] as? String)?.contains("ImagePull") == true })
        #expect(findings.last?["checkID"] as? String == "cleanup.namespace")
        #expect(findings.last?["observed"] as? String == "gone")
    }

    /// Docker Desktop's shape: node addresses are not reachable from the host (the sim's `nodePortsUnreachable`).
    @Test("node addresses unreachable from here: Redis is reached through a port-forward to its pod, audited and watched expire, through both backends",
          arguments: ["api", "kubectl"])
    func redisThroughPortForward(backend: String) async throws {
        let faults = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-faults-\(UUID().uuidString.prefix(8)).yaml")
        try "network: {nodePortsUnreachable: true}\n".write(to: faults, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: faults) }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kcache-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: cache) }
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "--faults", faults.path, "--backend", backend, "--skip-lifecycle",
                                            "--redis-ttl", "10", "--output", "json"], environment: ["KUBECACHEDIR": cache.path], timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        func with(_ check: String) -> [[String: Any]] { findings.filter { $0["checkID"] as? String == check } }
        let access = try #require(with("redis.access").first?["observed"] as? String)
        #expect(access.hasPrefix("port-forward to pod redis-"), "\(access)")
        #expect(access.contains("port 6379"), "\(access)")
        #expect(access.contains("did not answer from here"), "\(access)")
        #expect(with("redis.ttl.missing").map { $0["status"] as? String } == ["pass", "pass"], "\(with("redis.ttl.missing"))")
        #expect(with("redis.expiry.all-expired").map { $0["status"] as? String } == ["pass", "pass"], "\(with("redis.expiry.all-expired"))")
        #expect(findings.last?["observed"] as? String == "gone")

        // Held to the NodePort alone, the same cluster cannot be audited: exit 3, and the report says where it tried.
        let nodePort = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "2", "--faults", faults.path, "--backend", backend,
                                                 "--skip-lifecycle", "--skip-expiry", "--redis-access", "node-port", "--output", "json"],
                                                environment: ["KUBECACHEDIR": cache.path], timeout: .seconds(300))
        #expect(nodePort.status == 3, "\(nodePort.stdout)\(nodePort.stderr)")
        let refused = try #require(try PatternCommandTests.report(nodePort)["findings"] as? [[String: Any]])
        let reachable = try #require(refused.first { $0["checkID"] as? String == "redis.reachable" })
        #expect((reachable["observed"] as? String)?.contains("refused") == true, "\(reachable)")
    }

    @Test("--redis-access port-forward skips the NodePort: the audit goes through the API server")
    func redisPortForwardChosen() async throws {
        let run = try await KVerifyRun.run(["sidecar", "--sim", "--nodes", "2", "--skip-lifecycle", "--skip-expiry", "--redis-access", "port-forward",
                                            "--output", "json"], timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        let access = try #require(findings.first { $0["checkID"] as? String == "redis.access" }?["observed"] as? String)
        #expect(access.hasPrefix("port-forward to pod redis-") && !access.contains("did not answer"), "\(access)")
        #expect(findings.filter { $0["checkID"] as? String == "redis.ttl.missing" }.allSatisfy { $0["status"] as? String == "pass" })
    }

    @Test("a Redis that does not answer (--redis-addr to a closed port) is exit 3 with redis.reachable")
    func redisUnreachable() async throws {
        let port = try TCPProbe.freePort()
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "2", "--skip-expiry", "--redis-addr", "127.0.0.1:\(port)",
                                            "--output", "json"], timeout: .seconds(240))
        #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        let redis = try #require(findings.first { $0["checkID"] as? String == "redis.reachable" })
        #expect((redis["observed"] as? String)?.contains("127.0.0.1:\(port)") == true, "\(redis)")
        #expect(findings.last?["observed"] as? String == "gone")
    }

    @Test("--chart renders through the helm on PATH (the bootstrap's real helm behind a recording wrapper) and applies that")
    func chartThroughHelm() async throws {
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-fakehelm-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: bin) }
        let log = bin.appendingPathComponent("calls")
        let helm = bin.appendingPathComponent("helm")
        try """
            #!/bin/sh
            # Records its arguments, then runs the real helm (scripts/bootstrap.sh installs it into .tools/bin).
            echo "$@" >> "\(log.path)"
            exec "\(ChartTests.helm)" "$@"
            """.write(to: helm, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: helm.path)
        let path = bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let chart = RepositoryPaths.root.appendingPathComponent("charts/kverify-demo").path
        let run = try await KVerifyRun.run(["sidecar", "--sim", "--nodes", "2", "--chart", chart, "--skip-expiry", "--output", "json"],
                                           environment: ["PATH": path], timeout: .seconds(240))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(try String(contentsOf: log, encoding: .utf8) == "template kverify \(chart) --skip-tests --set mode=sidecar --set nodes=2\n")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        #expect(findings.filter { $0["checkID"] as? String == "node.metrics" && $0["status"] as? String == "pass" }.count == 2)
    }
}

@Suite("daemonset/sidecar -f and chart values")
struct UserManifestOptionTests {
    @Test("-f takes a directory of the user's own file names (yml and yaml, other files ignored) and verifies it on the sim")
    func filenameDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-f-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let manifests = RepositoryPaths.root.appendingPathComponent("manifests")
        try FileManager.default.copyItem(at: manifests.appendingPathComponent("redis.yaml"), to: directory.appendingPathComponent("01-store.yml"))
        try FileManager.default.copyItem(at: manifests.appendingPathComponent("daemonset.yaml"), to: directory.appendingPathComponent("02-app.yaml"))
        try "not a manifest".write(to: directory.appendingPathComponent("NOTES.txt"), atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "-f", directory.path, "--skip-expiry", "--output", "json"],
                                           timeout: .seconds(240))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        #expect(findings.filter { $0["checkID"] as? String == "node.metrics" && $0["status"] as? String == "pass" }.count == 2)
    }

    /// The bundled DaemonSet reshaped as another team would write it: other names and labels, the app on 8080 with
    /// an unnamed port, the exporter on 9200 declared only by `prometheus.io/*` annotations (no port named metrics).
    /// Each replacement must hit, so a change to the bundled file cannot quietly turn this back into the original.
    static func reshapedDaemonSet(annotated: Bool, sharedRedis: Bool = false) throws -> String {
        var text = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("manifests/daemonset.yaml"), encoding: .utf8)
        var replacements: [(String, String)] = [
            ("gunicorn-prometheus-exporter-daemonset", "shop-node-agent"),
            ("app: gunicorn-prometheus-exporter", "app: shop"),
            ("component: daemonset", "component: agent"),
            ("0.0.0.0:8000", "0.0.0.0:8080"),
            ("- name: http\n              containerPort: 8000", "- containerPort: 8080"),
            ("port: http\n", "port: 8080\n"),
            ("targetPort: http", "targetPort: 8080"),
            ("value: \"9091\"", "value: \"9200\""),
            ("- name: metrics\n              containerPort: 9091", "- containerPort: 9200"),
            ("port: metrics\n", "port: 9200\n"),
            ("targetPort: metrics", "targetPort: 9200"),
        ]
        if sharedRedis {
            replacements += [("value: redis-service", "value: cache"), ("value: gunicorn-$(POD_NAME)", "value: shop")]
        }
        if annotated {
            replacements.append(("        app.kubernetes.io/part-of: kverify-demo\n    spec:",
                                 "        app.kubernetes.io/part-of: kverify-demo\n      annotations:\n        prometheus.io/scrape: \"true\"\n"
                                    + "        prometheus.io/port: \"9200\"\n        prometheus.io/path: /metrics\n    spec:"))
        }
        for (old, new) in replacements {
            guard text.contains(old) else { throw FixtureError("manifests/daemonset.yaml no longer contains \(old.debugDescription)") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    @Test("another team's DaemonSet (other names, labels and ports; metrics declared by annotation) is verified on the sim, and the report says how each endpoint was found")
    func discoveredEndpoints() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-shop-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(at: RepositoryPaths.root.appendingPathComponent("manifests/redis.yaml"), to: directory.appendingPathComponent("redis.yaml"))
        try Self.reshapedDaemonSet(annotated: true).write(to: directory.appendingPathComponent("agent.yaml"), atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "-f", directory.path, "--skip-expiry", "--output", "json"],
                                           timeout: .seconds(240))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        let endpoints = findings.filter { $0["checkID"] as? String == "targets.endpoints" }.compactMap { $0["observed"] as? String }
        #expect(endpoints.count == 2)
        #expect(endpoints.allSatisfy { $0 == "metrics :9200/metrics (pod annotation prometheus.io/port); app :8080 / (first container port (app); none is named http)" },
                "\(endpoints)")
        #expect(findings.filter { $0["checkID"] as? String == "node.metrics" && $0["status"] as? String == "pass" }.count == 2)
        #expect(findings.filter { $0["checkID"] as? String == "traffic.requests" && $0["status"] as? String == "pass" }.count == 2)
    }

    /// Redis as the exporter project's examples have it: behind a ClusterIP Service (named `service`), every pod
    /// writing under one shared prefix.
    static func reshapedRedis(service: String = "cache") throws -> String {
        var text = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("manifests/redis.yaml"), encoding: .utf8)
        for (old, new) in [("name: redis-service", "name: \(service)"), ("type: NodePort\n", "type: ClusterIP\n"), ("      nodePort: 30379\n", "")] {
            guard text.contains(old) else { throw FixtureError("manifests/redis.yaml no longer contains \(old.debugDescription)") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    @Test("Redis behind a ClusterIP Service with one prefix for every pod: reached through a run-owned NodePort twin, audited as a whole",
          arguments: ["api", "kubectl"])
    func clusterIPRedisSharedPrefix(backend: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-shop-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.reshapedRedis().write(to: directory.appendingPathComponent("cache.yaml"), atomically: false, encoding: .utf8)
        try Self.reshapedDaemonSet(annotated: true, sharedRedis: true).write(to: directory.appendingPathComponent("agent.yaml"), atomically: false, encoding: .utf8)
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kcache-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: cache) }
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "-f", directory.path, "--backend", backend, "--skip-expiry",
                                            "--output", "json"], environment: ["KUBECACHEDIR": cache.path], timeout: .seconds(240))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        func observed(_ check: String) -> [String] { findings.filter { $0["checkID"] as? String == check }.compactMap { $0["observed"] as? String } }
        #expect(observed("redis.access").count == 1)
        #expect(observed("redis.access").first?.contains("Service cache-kverify-access, kverify's twin of ClusterIP Service cache") == true,
                "\(observed("redis.access"))")
        #expect(observed("redis.prefix.shared").first?.hasPrefix("shared by 2 pods") == true, "\(observed("redis.prefix.shared"))")
        let missing = findings.filter { $0["checkID"] as? String == "redis.ttl.missing" }
        #expect(missing.map { $0["subject"] as? String } == ["shop:*"])
        #expect(missing.allSatisfy { $0["status"] as? String == "pass" })
    }

    @Test("a sidecar Deployment with replicas: 1 and no spread rule, run with --nodes 3: kverify adds a spread constraint, says so, and gets 3 pods on 3 nodes")
    func sidecarWithoutSpreadRule() async throws {
        var text = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("manifests/sidecar.yaml"), encoding: .utf8)
        // Cut the template's topologySpreadConstraints and affinity blocks (up to the securityContext that follows).
        let start = try #require(text.range(of: "      topologySpreadConstraints:\n"))
        let end = try #require(text.range(of: "      securityContext:\n", range: start.upperBound..<text.endIndex))
        text.removeSubrange(start.lowerBound..<end.lowerBound)
        let replicas = try #require(text.range(of: "  replicas: 3\n"))
        text.replaceSubrange(replicas, with: "  replicas: 1\n")
        #expect(!text.contains("topologySpreadConstraints") && !text.contains("podAntiAffinity"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-spread-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(at: RepositoryPaths.root.appendingPathComponent("manifests/redis.yaml"), to: directory.appendingPathComponent("redis.yaml"))
        try text.write(to: directory.appendingPathComponent("web.yaml"), atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["sidecar", "--sim", "--nodes", "3", "-f", directory.path, "--skip-expiry", "--output", "json"],
                                           timeout: .seconds(240))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        let spread = findings.filter { $0["checkID"] as? String == "apply.spread" }
        #expect(spread.count == 1)
        #expect((spread.first?["observed"] as? String)?.contains("kverify added topologySpreadConstraints") == true, "\(spread)")
        let nodes = findings.filter { $0["checkID"] as? String == "node.metrics" && $0["status"] as? String == "pass" }.compactMap { $0["subject"] as? String }
        #expect(Set(nodes).count == 3, "\(nodes)")
    }

    /// A NetworkPolicy admitting ingress to the `app: shop` pods on `ports`, as the exporter project's example has.
    static func shopNetworkPolicy(ports: [Int]) -> String {
        """
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: shop-allow-scrape}
        spec:
          podSelector: {matchLabels: {app: shop}}
          policyTypes: [Ingress]
          ingress:
            - ports: [\(ports.map { "{port: \($0)}" }.joined(separator: ", "))]

        """
    }

    /// `reshapedRedis()` with its data on a PersistentVolumeClaim (bound by the sim's `standard` StorageClass).
    static func cacheWithClaim(service: String = "cache") throws -> String {
        var cache = try reshapedRedis(service: service)
        guard cache.contains("          emptyDir: {}\n") else { throw FixtureError("manifests/redis.yaml no longer has its emptyDir") }
        cache = cache.replacingOccurrences(of: "          emptyDir: {}\n", with: "          persistentVolumeClaim: {claimName: cache-data}\n")
        return cache + """
            ---
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata: {name: cache-data}
            spec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 1Gi}}

            """
    }

    /// The bundled runtime map with absolute paths, plus the team's image `acme/shop-web` run as the demo app; the
    /// caller removes the file.
    static func shopRuntimeMap() throws -> URL {
        let root = RepositoryPaths.root.path
        var runtime = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("sim/runtime.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "\"../", with: "\"\(root)/").replacingOccurrences(of: ": ../", with: ": \(root)/")
            .replacingOccurrences(of: "metrics: stub-metrics.prom", with: "metrics: \(root)/sim/stub-metrics.prom")
        runtime = runtime.replacingOccurrences(of: "  - image: \"kverify-demo-app:*\"", with: "  - image: \"acme/shop-web:*\"")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-runtime-\(UUID().uuidString.prefix(8)).yaml")
        try runtime.write(to: file, atomically: false, encoding: .utf8)
        return file
    }

    /// Shaped like the exporter project's own Kubernetes example: a hostNetwork DaemonSet with `hostPort: 9091`, app and
    /// exporter under images the bundled runtime map does not know (mapped with --sim-runtime), one shared
    /// `REDIS_KEY_PREFIX`, Redis as a Deployment with a PVC behind a ClusterIP `redis-service`, an app Service and a
    /// metrics Service carrying `prometheus.io/*` annotations, and a NetworkPolicy.
    @Test("the exporter project's shape (hostNetwork, hostPort 9091, own images via --sim-runtime, shared prefix, PVC, ClusterIP redis-service, annotated Services, NetworkPolicy) verifies with expiry",
          arguments: ["api", "kubectl"])
    func exporterProjectShape(backend: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-upstream-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var agent = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("manifests/daemonset.yaml"), encoding: .utf8)
        let annotations = "  annotations:\n    prometheus.io/scrape: \"true\"\n    prometheus.io/port: \"9091\"\n    prometheus.io/path: /metrics\n"
        for (old, new) in [
            ("gunicorn-prometheus-exporter-daemonset", "shop-node-agent"),
            ("app: gunicorn-prometheus-exporter", "app: shop"),
            ("component: daemonset", "component: agent"),
            ("image: kverify-demo-app:dev", "image: acme/shop-web:2.1"),
            ("value: gunicorn-$(POD_NAME)", "value: shop"),
            ("        app.kubernetes.io/part-of: kverify-demo\n    spec:\n",
             "        app.kubernetes.io/part-of: kverify-demo\n    spec:\n      hostNetwork: true\n      dnsPolicy: ClusterFirstWithHostNet\n"),
            ("- name: metrics\n              containerPort: 9091\n", "- name: metrics\n              containerPort: 9091\n              hostPort: 9091\n"),
            ("  name: gunicorn-app\n", "  name: shop-http\n"),
            ("  name: gunicorn-metrics\n", "  name: shop-metrics\n"),
            ("    app.kubernetes.io/managed-by: kverify\nspec:\n  type: NodePort\n", "    app.kubernetes.io/managed-by: kverify\n\(annotations)spec:\n  type: ClusterIP\n"),
            ("      nodePort: 30800\n", ""), ("      nodePort: 30991\n", ""),
        ] {
            guard agent.contains(old) else { throw FixtureError("manifests/daemonset.yaml no longer contains \(old.debugDescription)") }
            agent = agent.replacingOccurrences(of: old, with: new)
        }
        #expect(agent.components(separatedBy: "prometheus.io/port: \"9091\"").count == 3, "both Services annotated")
        #expect(!agent.contains("nodePort"))
        agent += Self.shopNetworkPolicy(ports: [8000, 9091])
        try agent.write(to: directory.appendingPathComponent("agent.yaml"), atomically: false, encoding: .utf8)
        try Self.cacheWithClaim(service: "redis-service").write(to: directory.appendingPathComponent("redis.yaml"), atomically: false, encoding: .utf8)
        let runtimeFile = try Self.shopRuntimeMap()
        defer { try? FileManager.default.removeItem(at: runtimeFile) }
        let kubeCache = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kcache-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: kubeCache) }
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "-f", directory.path, "--sim-runtime", runtimeFile.path,
                                            "--backend", backend, "--output", "json"], environment: ["KUBECACHEDIR": kubeCache.path], timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        func with(_ check: String) -> [[String: Any]] { findings.filter { $0["checkID"] as? String == check } }
        func observed(_ check: String) -> [String] { with(check).compactMap { $0["observed"] as? String } }
        #expect(with("node.metrics").filter { $0["status"] as? String == "pass" }.count == 2)
        // The metrics endpoint found from the annotated Services (before the port named metrics), on the node's address.
        let endpoints = observed("targets.endpoints")
        #expect(endpoints.count == 2 && endpoints.allSatisfy { $0.hasPrefix("metrics :9091/metrics (annotation prometheus.io/port on Service shop-") },
                "\(endpoints)")
        #expect(observed("redis.access").first?.contains("twin of ClusterIP Service redis-service") == true, "\(observed("redis.access"))")
        #expect(observed("redis.prefix.shared").first?.hasPrefix("shared by 2 pods") == true, "\(observed("redis.prefix.shared"))")
        #expect(with("redis.ttl.missing").map { $0["subject"] as? String } == ["shop:*"])
        #expect(with("redis.ttl.missing").map { $0["status"] as? String } == ["pass"])
        #expect(with("redis.expiry.all-expired").map { $0["status"] as? String } == ["pass"], "\(with("redis.expiry.all-expired"))")
    }

    /// The sidecar equivalent, as the exporter project's sidecar test deploys it: one Deployment with `replicas: 1`
    /// and no spread rule, containers `web` and `metrics-agent` (read-only root, an emptyDir), app and metrics Services
    /// with `prometheus.io/*` annotations, a NetworkPolicy, Redis with a PVC behind a ClusterIP Service, images the
    /// bundled map does not know; run with --nodes 3.
    @Test("the exporter project's sidecar shape (replicas: 1, no spread rule, ClusterIP Redis with a PVC, NetworkPolicy, own images) verifies 3 pods on 3 nodes with expiry",
          arguments: ["api", "kubectl"])
    func exporterProjectSidecarShape(backend: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-upstream-sc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var web = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("manifests/sidecar.yaml"), encoding: .utf8)
        let start = try #require(web.range(of: "      topologySpreadConstraints:\n"))
        let end = try #require(web.range(of: "      securityContext:\n", range: start.upperBound..<web.endIndex))
        web.removeSubrange(start.lowerBound..<end.lowerBound)
        for (old, new) in [
            ("  replicas: 3\n", "  replicas: 1\n"),
            ("gunicorn-app-with-sidecar", "shop-web"),
            ("app: gunicorn-prometheus-exporter", "app: shop"),
            ("component: sidecar", "component: web"),
            ("image: kverify-demo-app:dev", "image: acme/shop-web:2.1"),
            ("- name: app\n", "- name: web\n"),
            ("- name: prometheus-exporter\n", "- name: metrics-agent\n"),
            ("value: redis-service", "value: cache"),
            ("name: gunicorn-app\n", "name: shop-http\n"),
            ("name: gunicorn-metrics\n", "name: shop-metrics\n"),
            ("    component: web\n    app.kubernetes.io/part-of: kverify-demo\n    app.kubernetes.io/managed-by: kverify\nspec:\n  type: NodePort\n  selector:\n    app: shop\n    component: web\n  ports:\n    - name: metrics\n",
             "    component: web\n  annotations:\n    prometheus.io/scrape: \"true\"\n    prometheus.io/port: \"9091\"\n    prometheus.io/path: /metrics\nspec:\n  type: ClusterIP\n  selector:\n    app: shop\n    component: web\n  ports:\n    - name: metrics\n"),
        ] {
            guard web.contains(old) else { throw FixtureError("manifests/sidecar.yaml no longer contains \(old.debugDescription)") }
            web = web.replacingOccurrences(of: old, with: new)
        }
        web += Self.shopNetworkPolicy(ports: [8000, 9091])
        try web.write(to: directory.appendingPathComponent("web.yaml"), atomically: false, encoding: .utf8)
        try Self.cacheWithClaim().write(to: directory.appendingPathComponent("cache.yaml"), atomically: false, encoding: .utf8)
        let runtimeFile = try Self.shopRuntimeMap()
        defer { try? FileManager.default.removeItem(at: runtimeFile) }
        let kubeCache = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kcache-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: kubeCache) }
        let run = try await KVerifyRun.run(["sidecar", "--sim", "--nodes", "3", "-f", directory.path, "--sim-runtime", runtimeFile.path,
                                            "--backend", backend, "--skip-lifecycle", "--output", "json"],
                                           environment: ["KUBECACHEDIR": kubeCache.path], timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
        func with(_ check: String) -> [[String: Any]] { findings.filter { $0["checkID"] as? String == check } }
        let nodes = with("node.metrics").filter { $0["status"] as? String == "pass" }.compactMap { $0["subject"] as? String }
        #expect(Set(nodes).count == 3, "3 pods on 3 distinct nodes: \(nodes)")
        #expect(with("apply.spread").count == 1)
        #expect((with("exporter.mode").first?["observed"] as? String)?.hasPrefix("sidecar: workers store in Redis, container metrics-agent serves") == true)
        #expect(with("redis.access").first.flatMap { $0["observed"] as? String }?.contains("twin of ClusterIP Service cache") == true)
        // Each pod's own prefix (gunicorn-$(POD_NAME)), each audited, each key expiring.
        #expect(with("redis.ttl.distribution").filter { $0["status"] as? String == "pass" }.count == 3, "\(with("redis.ttl.distribution"))")
        #expect(with("redis.expiry.all-expired").map { $0["status"] as? String } == ["pass", "pass", "pass"], "\(with("redis.expiry.all-expired"))")
    }

    @Test("a chart that fails to render is exit 2 with helm's own message, and no cluster is started")
    func chartRenderFailure() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-badchart-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.copyItem(at: RepositoryPaths.root.appendingPathComponent("charts/kverify-demo"), to: scratch)
        try "{{ fail \"shop chart: set image.tag\" }}\n".write(to: scratch.appendingPathComponent("templates/guard.yaml"), atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--chart", scratch.path, "--output", "json"], timeout: .seconds(120))
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("helm template \(scratch.path) failed (exit 1)"), "\(run.stderr)")
        #expect(run.stderr.contains("shop chart: set image.tag"), "helm's own message: \(run.stderr)")
        #expect(!run.stderr.contains("simulated cluster"), "no sim was started: \(run.stderr)")
    }

    @Test("a DaemonSet whose metrics endpoint cannot be found is exit 2 naming the three ways to declare one, before a cluster starts")
    func undiscoverableEndpoint() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-shop-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(at: RepositoryPaths.root.appendingPathComponent("manifests/redis.yaml"), to: directory.appendingPathComponent("redis.yaml"))
        try Self.reshapedDaemonSet(annotated: false).write(to: directory.appendingPathComponent("agent.yaml"), atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["daemonset", "-f", directory.path, "--kubeconfig", "/nonexistent/kubeconfig"], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.contains("DaemonSet/shop-node-agent"), "\(run.stderr)")
        #expect(run.stderr.contains("prometheus.io/port annotation"), "\(run.stderr)")
        #expect(run.stderr.contains("a container port named \"metrics\""), "\(run.stderr)")
        #expect(run.stderr.contains("--metrics-port"), "\(run.stderr)")
        // With the port given, the same manifests pass that check (and fail later, only on the missing kubeconfig).
        let given = try await KVerifyRun.run(["daemonset", "-f", directory.path, "--metrics-port", "9200", "--kubeconfig", "/nonexistent/kubeconfig"],
                                             timeout: .seconds(30))
        #expect(!given.stderr.contains("declares no metrics endpoint"), "\(given.stderr)")
    }

    @Test("bad -f and chart-value flags are exit 2 before any cluster is contacted", arguments: [
        (["daemonset", "-f", "/nonexistent/kverify.yaml"], "-f /nonexistent/kverify.yaml: no such file or directory"),
        (["daemonset", "-f", "/proc/self"], "-f /proc/self: the directory holds no *.yaml, *.yml or *.json file"),
        (["daemonset", "--set", "mode=x"], "--set and --values are chart values: they need --chart"),
        (["sidecar", "--chart", "charts/kverify-demo", "-f", "manifests"], "--chart and -f/--filename both name the manifests"),
    ])
    func badFlags(arguments: [String], message: String) async throws {
        let run = try await KVerifyRun.run(arguments + ["--kubeconfig", "/nonexistent/kubeconfig"], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test("-f - reads the manifests from standard input; an empty input names the flag")
    func filenameStdinEmpty() async throws {
        let run = try await KVerifyRun.run(["daemonset", "-f", "-", "--kubeconfig", "/nonexistent/kubeconfig"], stdin: [], timeout: .seconds(30))
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.contains("-f -: no Kubernetes objects found"), "\(run.stderr)")
    }
}
