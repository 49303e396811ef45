import Foundation
import KVerifyTestSupport
import Testing

/// `kverify daemonset|sidecar` on every exporter mode of the bundled chart, on the sim with the real exporter, and
/// the broken configurations it names before touching the cluster.
@Suite("exporter modes on the sim (CLI)")
struct ExporterModeCommandTests {
    static func findings(_ run: KVerifyRun) throws -> [[String: Any]] {
        try #require(try PatternCommandTests.report(run)["findings"] as? [[String: Any]])
    }

    static func with(_ findings: [[String: Any]], _ check: String) -> [[String: Any]] {
        findings.filter { $0["checkID"] as? String == check }
    }

    /// The chart-mode runs below skip the lifecycle phase; these run it in every other mode (sidecar mode has its
    /// runs in PatternRunE2ETests and PatternCommandSimTests), each mode in both patterns and through both backends.
    @Test("the lifecycle phase (signals, then the graceful delete) holds in embedded, multiprocess and yaml mode, both patterns, both backends",
          arguments: [
              ("daemonset", "embedded", "api"), ("sidecar", "embedded", "kubectl"),
              ("daemonset", "multiprocess", "kubectl"), ("sidecar", "multiprocess", "api"),
              ("daemonset", "yaml", "api"), ("sidecar", "yaml", "kubectl"),
          ])
    func lifecycleModes(pattern: String, mode: String, backend: String) async throws {
        let chart = RepositoryPaths.root.appendingPathComponent("charts/kverify-demo").path
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kcache-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: cache) }
        let run = try await KVerifyRun.run([pattern, "--sim", "--nodes", "3", "--chart", chart, "--set", "exporter.mode=\(mode)", "--skip-expiry",
                                            "--backend", backend, "--output", "json"],
                                           environment: ["KUBECACHEDIR": cache.path], timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try Self.findings(run)
        for check in ["lifecycle.master", "lifecycle.ttin", "lifecycle.ttou", "lifecycle.hup", "lifecycle.usr1", "lifecycle.shutdown.terminating",
                      "lifecycle.shutdown.replacement"] {
            #expect(Self.with(findings, check).compactMap { $0["status"] as? String } == ["pass"], "\(check): \(Self.with(findings, check))")
        }
        // QUIT and ABRT: a pass, or either outcome of the exporter's signal race named (Lifecycle.workerSignal).
        for check in ["lifecycle.quit", "lifecycle.abort"] {
            let found = Self.with(findings, check)
            let observed = found.first?["observed"] as? String ?? ""
            #expect(found.count == 1 && (found[0]["status"] as? String == "pass"
                || observed.contains("WORKER TIMEOUT (pid:") || observed.contains("never counted")), "\(found)")
        }
        // One container in these modes: the master serves /metrics itself.
        let exits = Self.with(findings, "lifecycle.shutdown.exit")
        #expect(exits.compactMap { $0["status"] as? String } == ["pass"], "\(exits)")
        #expect((exits.first?["subject"] as? String)?.hasSuffix("container/app") == true)
    }

    @Test("--chart --set exporter.mode=M verifies every mode in both patterns, with the checks of that mode", arguments: [
        ("daemonset", "sidecar"), ("daemonset", "embedded"), ("daemonset", "multiprocess"), ("daemonset", "yaml"),
        ("sidecar", "sidecar"), ("sidecar", "embedded"), ("sidecar", "multiprocess"), ("sidecar", "yaml"),
    ])
    func chartModes(pattern: String, mode: String) async throws {
        let chart = RepositoryPaths.root.appendingPathComponent("charts/kverify-demo").path
        // The lifecycle phase has its own tests; expiry is observed where the mode's TTL comes from the YAML.
        var arguments = [pattern, "--sim", "--nodes", "3", "--chart", chart, "--set", "exporter.mode=\(mode)", "--skip-lifecycle", "--output", "json"]
        if mode != "yaml" { arguments.append("--skip-expiry") }
        let run = try await KVerifyRun.run(arguments, timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let findings = try Self.findings(run)
        let pods = pattern == "sidecar" ? 3 : 2

        let modeFinding = Self.with(findings, "exporter.mode")
        #expect(modeFinding.count == 1 && modeFinding.first?["status"] as? String == "pass", "\(modeFinding)")
        let observed = modeFinding.first?["observed"] as? String ?? ""
        #expect(observed.hasPrefix(mode == "yaml" ? "embedded:" : "\(mode):"), "\(observed)")

        let workers = Self.with(findings, "exporter.workers")
        #expect(workers.count == pods && workers.allSatisfy { $0["status"] as? String == "pass" }, "\(workers)")
        #expect(workers.allSatisfy { ($0["observed"] as? String)?.hasPrefix("2 worker_id values") == true }, "\(workers)")

        let files = Self.with(findings, "exporter.multiproc_files")
        if mode == "multiprocess" {
            #expect(files.count == pods && files.allSatisfy { $0["status"] as? String == "pass" }, "\(files)")
            #expect(Self.with(findings, "redis.skipped").count == 1)
            #expect(Self.with(findings, "redis.access").isEmpty, "no Redis is rendered or audited in multiprocess mode")
        } else {
            #expect(files.isEmpty)
            #expect(Self.with(findings, "redis.access").count == 1)
            #expect(Self.with(findings, "redis.skipped").isEmpty)
        }
        if mode == "yaml" {
            // The YAML says 4 workers and a TTL of 300 s; the container's GUNICORN_WORKERS=2 and the run's
            // REDIS_TTL_SECONDS win, and the keys expire within the run's TTL.
            #expect(observed.contains("settings from YAML (ConfigMap gunicorn-exporter-config"), "\(observed)")
            #expect(observed.contains("env wins for GUNICORN_WORKERS, REDIS_KEY_PREFIX, REDIS_TTL_SECONDS"), "\(observed)")
            let expiry = Self.with(findings, "redis.expiry.within-ttl")
            #expect(!expiry.isEmpty && expiry.allSatisfy { $0["status"] as? String == "pass" }, "\(expiry)")
        }
    }

    /// Every edit must hit, so a change to the bundled files cannot quietly turn the fixture back into them.
    static func replacing(_ path: String, _ edits: [(String, String)]) throws -> String {
        var text = try String(contentsOf: RepositoryPaths.root.appendingPathComponent(path), encoding: .utf8)
        for (old, new) in edits {
            guard text.contains(old) else { throw FixtureError("\(path) no longer contains \(old.debugDescription)") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    @Test("Redis with a password from a Secret and REDIS_DB 3: kverify logs in as the exporter does, audits database 3, prints no password")
    func passwordAndDatabase() async throws {
        let password = "pw-\(UUID().uuidString.prefix(12))"
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: cache-login}\ntype: Opaque\nstringData: {password: \(password)}\n---\n"
        let fromSecret = "valueFrom: {secretKeyRef: {name: cache-login, key: password}}"
        let redis = try Self.replacing("manifests/redis.yaml", [
            (#"args: ["--save", "", "--appendonly", "no"]"#, #"args: ["--save", "", "--appendonly", "no", "--requirepass", "$(REDIS_PASSWORD)"]"#),
            ("          ports:\n            - name: redis\n", "          env:\n            - name: REDIS_PASSWORD\n              \(fromSecret)\n          ports:\n            - name: redis\n"),
        ])
        let daemonSet = try Self.replacing("manifests/daemonset.yaml", [
            ("            - name: REDIS_KEY_PREFIX\n",
             "            - name: REDIS_PASSWORD\n              \(fromSecret)\n            - name: REDIS_DB\n              value: \"3\"\n            - name: REDIS_KEY_PREFIX\n"),
        ])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-auth-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try (secret + redis).write(to: directory.appendingPathComponent("redis.yaml"), atomically: false, encoding: .utf8)
        try daemonSet.write(to: directory.appendingPathComponent("app.yaml"), atomically: false, encoding: .utf8)
        for output in ["json", "text"] {
            let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "-f", directory.path, "--skip-lifecycle", "--skip-expiry",
                                                "--output", output, "--verbose"], timeout: .seconds(300))
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(!(run.stdout + run.stderr).contains(password), "the password is printed")
            guard output == "json" else { continue }
            // The exporter writes database 3 only: keys found and audited there prove kverify logged in and selected it.
            let ttl = Self.with(try Self.findings(run), "redis.ttl.distribution")
            #expect(ttl.count == 2 && ttl.allSatisfy { $0["status"] as? String == "pass" }, "\(ttl)")
        }
    }

    /// A mode file with one edit, which must hit.
    static func edited(_ path: String, _ old: String, _ new: String) throws -> URL {
        let text = try String(contentsOf: RepositoryPaths.root.appendingPathComponent(path), encoding: .utf8)
        guard text.contains(old) else { throw FixtureError("\(path) no longer contains \(old.debugDescription)") }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-mode-\(UUID().uuidString.prefix(8)).yaml")
        try text.replacingOccurrences(of: old, with: new).write(to: file, atomically: false, encoding: .utf8)
        return file
    }

    @Test("a broken mode fails with its reason before anything is applied", arguments: [
        // multiprocess with its directory off every volume, on a read-only root filesystem
        ("manifests/modes/multiprocess/daemonset.yaml", "value: /tmp/prometheus_multiproc", "value: /var/run/prometheus_multiproc",
         "PROMETHEUS_MULTIPROC_DIR=/var/run/prometheus_multiproc is on no volume of container app, whose root filesystem is read-only"),
        // a YAML the exporter's loader refuses
        ("manifests/modes/yaml/daemonset.yaml", "        metrics_port: 9091\n", "",
         "the exporter refuses ConfigMap gunicorn-exporter-config key exporter.yaml at /etc/gunicorn-exporter/exporter.yaml: "
            + "Missing required field: exporter.prometheus.metrics_port"),
    ])
    func brokenMode(path: String, old: String, new: String, reason: String) async throws {
        let file = try Self.edited(path, old, new)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try await KVerifyRun.run(["daemonset", "--sim", "--nodes", "3", "-f", file.path, "--output", "json"], timeout: .seconds(120))
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        let report = try PatternCommandTests.report(run)
        let findings = try #require(report["findings"] as? [[String: Any]])
        let mode = Self.with(findings, "exporter.mode")
        #expect(mode.first?["status"] as? String == "fail")
        #expect((mode.first?["observed"] as? String)?.contains(reason) == true, "\(mode)")
        let phases = (report["phases"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(phases == ["exporter", "cleanup"], "stopped before preflight and apply: \(phases)")
    }
}
