import Findings
import Foundation
import KubeClient
import KubeModel

/// The Gunicorn Prometheus Exporter's settings in the user's pod template, read as the exporter reads them, and the
/// mode they put it in.
///
/// Settings are the gunicorn container's env (literal values with `$(VAR)` references, ConfigMap references of the
/// manifests); when `YAML_CONFIG_PATH` names a file on a ConfigMap volume of the manifests, its YAML fills in what the
/// env leaves unset, as the exporter's `load_yaml_config` does (env always wins). An invalid file is refused with the
/// message the exporter's loader raises, so kverify names the problem before the pods crash-loop on it.
///
/// The mode follows from them (../shared/reference/exporter.md):
/// - `REDIS_ENABLED` true: Redis storage; `sidecar` when another container declares the metrics port, else
///   `embedded` (the master serves `/metrics`, `redis_when_ready`).
/// - else `PROMETHEUS_MULTIPROC_DIR` set: `multiprocess`, files on a volume, no Redis.
/// - else no mode: the exporter skips its metrics server.
public struct ExporterConfig: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable {
        case sidecar, embedded, multiprocess
    }

    /// The container that runs gunicorn (its env carries the exporter's settings).
    public var container: String
    /// Effective settings: env over YAML.
    public var settings: [String: String]
    /// Settings whose value came from the YAML file.
    public var fromYAML: Set<String> = []
    /// Settings the YAML sets and the env overrides.
    public var overridden: Set<String> = []
    /// Where the YAML was read ("ConfigMap x, key y, at /path"), when it was.
    public var yamlSource: String?
    /// What makes the configuration unusable, each a sentence naming the setting and the fix.
    public var problems: [String] = []
    /// Notes for the report (a YAML not in the files, say).
    public var notes: [String] = []
    public var mode: Mode?
    /// The container that serves `/metrics` in sidecar mode.
    public var metricsContainer: String?
    /// Values kept out of `settings` (which holds "(hidden)" for them) and out of every description: the Redis
    /// password, from a Secret of the manifests or the YAML.
    public var hidden: [String: Hidden] = [:]

    /// A value never printed: its description is "(hidden)".
    public struct Hidden: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
        public var value: String
        public var description: String { "(hidden)" }
        public var debugDescription: String { "(hidden)" }
    }

    public static let exporterVariables: Set<String> = ["REDIS_ENABLED", "PROMETHEUS_METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR", "YAML_CONFIG_PATH"]

    public var redisEnabled: Bool { Self.truthy(settings["REDIS_ENABLED"]) }
    public var multiprocDir: String? { settings["PROMETHEUS_MULTIPROC_DIR"].flatMap { $0.isEmpty ? nil : $0 } }
    public var workers: Int? { settings["GUNICORN_WORKERS"].flatMap { Int($0) } }
    /// `REDIS_PASSWORD`, when the manifests give it (a Secret of the files, a literal, or the YAML).
    public var redisPassword: String? { hidden["REDIS_PASSWORD"]?.value }
    /// `REDIS_DB` (0 when unset).
    public var redisDatabase: Int { settings["REDIS_DB"].flatMap { Int($0) } ?? 0 }

    static let secretVariables: Set<String> = ["REDIS_PASSWORD"]

    /// The exporter's own reading of a boolean (`true/1/yes/on`).
    public static func truthy(_ value: String?) -> Bool { ["true", "1", "yes", "on"].contains(value?.lowercased() ?? "") }

    /// Reads the settings of `workload` (a DaemonSet or Deployment) with the other objects of the same files; nil
    /// when no container has any of the exporter's variables (not a Gunicorn Prometheus Exporter pod).
    public static func read(workload: JSONValue, manifests: [JSONValue]) -> ExporterConfig? {
        let pod = workload.value(at: ["spec", "template", "spec"])
        let containers = pod?["containers"]?.arrayValue ?? []
        let withExporterEnv = containers.filter { container in
            (container["env"]?.arrayValue ?? []).contains { exporterVariables.contains($0["name"]?.stringValue ?? "") }
        }
        guard !withExporterEnv.isEmpty else { return nil }
        func mentionsGunicorn(_ container: JSONValue) -> Bool {
            ((container["command"]?.arrayValue ?? []) + (container["args"]?.arrayValue ?? [])).contains { $0.stringValue?.contains("gunicorn") == true }
        }
        func declaresPort(_ container: JSONValue, named name: String) -> Bool {
            (container["ports"]?.arrayValue ?? []).contains { $0["name"]?.stringValue == name }
        }
        let gunicorn = withExporterEnv.first(where: mentionsGunicorn) ?? withExporterEnv.first { declaresPort($0, named: "http") } ?? withExporterEnv[0]
        let name = gunicorn["name"]?.stringValue ?? ""
        func byName(_ kind: String) -> [String: JSONValue] {
            Dictionary(manifests.filter { $0["kind"]?.stringValue == kind }.map { ($0.value(at: ["metadata", "name"])?.stringValue ?? "", $0) },
                       uniquingKeysWith: { first, _ in first })
        }
        let configMaps = byName("ConfigMap")

        var config = ExporterConfig(container: name, settings: env(of: gunicorn, configMaps: configMaps, secrets: byName("Secret")))
        config.hideSecrets()
        if let path = config.settings["YAML_CONFIG_PATH"], !path.isEmpty {
            config.applyYAML(at: path, container: gunicorn, volumes: pod?["volumes"]?.arrayValue ?? [], configMaps: configMaps)
            config.hideSecrets()
        }

        let port = config.settings["PROMETHEUS_METRICS_PORT"].flatMap { Int($0) }
        let servesMetrics = containers.first { container in
            (container["ports"]?.arrayValue ?? []).contains { $0["name"]?.stringValue == "metrics" || (port != nil && $0["containerPort"]?.intValue == port) }
        }
        if config.redisEnabled {
            config.checkRedisService(services: Set(manifests.filter { $0["kind"]?.stringValue == "Service" }.compactMap { $0.value(at: ["metadata", "name"])?.stringValue }))
            if let other = servesMetrics, other["name"]?.stringValue != name {
                config.mode = .sidecar
                config.metricsContainer = other["name"]?.stringValue
            } else {
                config.mode = .embedded
            }
        } else if let directory = config.multiprocDir {
            config.mode = .multiprocess
            config.checkMultiprocVolume(directory, container: gunicorn)
        } else if config.problems.isEmpty {
            // Not a problem: the image may set them (`ENV` in its Dockerfile), which the files cannot show.
            config.notes.append("container \(name) sets neither REDIS_ENABLED=true nor PROMETHEUS_MULTIPROC_DIR in the files; unless its image "
                + "sets one, the exporter skips its metrics server (\"PROMETHEUS_MULTIPROC_DIR not set; skipping metrics server\")")
        }
        return config
    }

    /// The `exporter.mode` finding: the mode and where its settings came from, or the problems.
    public var finding: Finding {
        let subject = "container \(container)"
        let expected = "a working exporter mode (sidecar, embedded or multiprocess; settings from env or YAML_CONFIG_PATH)"
        guard problems.isEmpty else {
            return .fail("exporter.mode", subject: subject, expected: expected, observed: problems.joined(separator: "; "))
        }
        guard let mode else {
            return .warn("exporter.mode", subject: subject, expected: expected, observed: "not known from the files", detail: notes.joined(separator: "; "))
        }
        var observed: String
        switch mode {
        case .sidecar: observed = "sidecar: workers store in Redis, container \(metricsContainer ?? "?") serves /metrics"
        case .embedded: observed = "embedded: workers store in Redis, the gunicorn master serves /metrics"
        case .multiprocess: observed = "multiprocess: workers write files to \(multiprocDir ?? "?"), the master serves them; no Redis"
        }
        if let yamlSource {
            observed += "; settings from YAML (\(yamlSource))"
            if !overridden.isEmpty { observed += ", env wins for \(overridden.sorted().joined(separator: ", "))" }
        } else {
            observed += "; settings from env"
        }
        if let workers { observed += "; \(workers) workers" }
        return Finding(checkID: "exporter.mode", subject: subject, status: .pass, expected: expected, observed: observed,
                       detail: notes.isEmpty ? nil : notes.joined(separator: "; "))
    }

    // MARK: Reading

    /// Moves secret values out of `settings` into `hidden`.
    mutating func hideSecrets() {
        for name in Self.secretVariables {
            guard let value = settings[name], !value.isEmpty, value != Hidden(value: "").description else { continue }
            hidden[name] = Hidden(value: value)
            settings[name] = Hidden(value: "").description
        }
    }

    /// A Secret key's value from the manifests: `stringData`, else base64 `data`.
    static func secretValue(_ secret: JSONValue?, key: String) -> String? {
        if let text = secret?.value(at: ["stringData", key])?.stringValue { return text }
        guard let encoded = secret?.value(at: ["data", key])?.stringValue, let data = Data(base64Encoded: encoded) else { return nil }
        return String(data: data, encoding: .utf8)
    }

    /// The container's env as the kubelet resolves it, where the manifests allow: literals with `$(VAR)` expanded
    /// from earlier entries, ConfigMap keys (`configMapKeyRef`, `envFrom`), and the Redis password from a Secret of
    /// the files. Downward-API values and other Secrets are left out (unknown before the pod exists, or not needed).
    static func env(of container: JSONValue, configMaps: [String: JSONValue], secrets: [String: JSONValue] = [:]) -> [String: String] {
        var env: [String: String] = [:]
        for source in container["envFrom"]?.arrayValue ?? [] {
            guard let name = source.value(at: ["configMapRef", "name"])?.stringValue, case .object(let data)? = configMaps[name]?["data"] else { continue }
            let prefix = source["prefix"]?.stringValue ?? ""
            for (key, value) in data { if let value = value.stringValue { env[prefix + key] = value } }
        }
        for entry in container["env"]?.arrayValue ?? [] {
            guard let key = entry["name"]?.stringValue else { continue }
            if let literal = entry["value"]?.stringValue {
                env[key] = EnvExpansion.expand(literal, env)
            } else if entry["value"] != nil || entry["valueFrom"] == nil {
                env[key] = ""
            } else if let reference = entry.value(at: ["valueFrom", "configMapKeyRef"]), let map = reference["name"]?.stringValue,
                      let item = reference["key"]?.stringValue, let value = configMaps[map]?.value(at: ["data", item])?.stringValue {
                env[key] = value
            } else if secretVariables.contains(key), let reference = entry.value(at: ["valueFrom", "secretKeyRef"]),
                      let value = secretValue(secrets[reference["name"]?.stringValue ?? ""], key: reference["key"]?.stringValue ?? "") {
                env[key] = value
            }
        }
        return env
    }


    /// The volume mount of `container` that holds `path`, with the rest of the path below it.
    static func mount(holding path: String, in container: JSONValue) -> (mount: JSONValue, rest: String)? {
        let mounts = (container["volumeMounts"]?.arrayValue ?? []).compactMap { mount -> (JSONValue, String)? in
            guard var mountPath = mount["mountPath"]?.stringValue else { return nil }
            while mountPath.count > 1 && mountPath.hasSuffix("/") { mountPath.removeLast() }
            return (mount, mountPath)
        }
        let holding = mounts.filter { path == $0.1 || path.hasPrefix($0.1 == "/" ? "/" : $0.1 + "/") }.max { $0.1.count < $1.1.count }
        guard let (mount, mountPath) = holding else { return nil }
        return (mount, String(path.dropFirst(mountPath.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/")))
    }

    private mutating func applyYAML(at path: String, container: JSONValue, volumes: [JSONValue], configMaps: [String: JSONValue]) {
        guard let (mount, rest) = Self.mount(holding: path, in: container) else {
            problems.append("YAML_CONFIG_PATH=\(path) is on no volume of container \(self.container): the exporter cannot read it; mount the "
                + "ConfigMap that holds it there")
            return
        }
        let volumeName = mount["name"]?.stringValue ?? ""
        guard let volume = volumes.first(where: { $0["name"]?.stringValue == volumeName }), let map = volume.value(at: ["configMap", "name"])?.stringValue else {
            notes.append("YAML_CONFIG_PATH=\(path) is on volume \(volumeName), not a ConfigMap: settings read from env only")
            return
        }
        // `items` maps keys to paths; without it every key is a file of its own name.
        let items = volume.value(at: ["configMap", "items"])?.arrayValue
        let key = items?.first { $0["path"]?.stringValue == rest }?["key"]?.stringValue ?? (items == nil ? rest : nil)
        guard let configMap = configMaps[map] else {
            notes.append("ConfigMap \(map) (YAML_CONFIG_PATH=\(path)) is not in the files: settings read from env only")
            return
        }
        guard let key, let text = configMap.value(at: ["data", key])?.stringValue else {
            problems.append("YAML_CONFIG_PATH=\(path) names \(rest) in ConfigMap \(map), which has no such key (it has "
                + "\((configMap["data"]?.objectValue?.keys.sorted() ?? []).joined(separator: ", "))); the exporter fails with \"Configuration file not found\"")
            return
        }
        let source = "ConfigMap \(map) key \(key) at \(path)"
        let yamlSettings: [String: String]
        do {
            yamlSettings = try ExporterYAML.settings(text)
        } catch {
            problems.append("the exporter refuses \(source): \(error)")
            return
        }
        yamlSource = source
        for (name, value) in yamlSettings {
            if settings[name] != nil {
                overridden.insert(name)
            } else {
                settings[name] = value
                fromYAML.insert(name)
            }
        }
    }

    /// A short `REDIS_HOST` (no dot: not an FQDN or an address) is a Service of the pod's namespace, and kverify
    /// applies the files into a fresh namespace: a Service not in the files cannot be there.
    private mutating func checkRedisService(services: Set<String>) {
        guard let host = settings["REDIS_HOST"], !host.isEmpty, !host.contains("."), !host.contains("$("), host != "localhost",
              !services.contains(host) else { return }
        problems.append("REDIS_HOST=\(host) names Service \(host), which is not in the files: kverify applies them into a fresh namespace, "
            + "where no other Service exists, so the exporter could not reach Redis; add the Service to the files, or point REDIS_HOST "
            + "at a name with dots (an FQDN such as redis.shared.svc.cluster.local, or an address)")
    }

    private mutating func checkMultiprocVolume(_ directory: String, container: JSONValue) {
        let readOnlyRoot = container.value(at: ["securityContext", "readOnlyRootFilesystem"]) == .bool(true)
        let mount = Self.mount(holding: directory, in: container)
        if let mount, mount.mount["readOnly"] == .bool(true) {
            problems.append("PROMETHEUS_MULTIPROC_DIR=\(directory) is on read-only volume \(mount.mount["name"]?.stringValue ?? "?"): the workers "
                + "cannot write their files; mount a writable emptyDir there")
        } else if mount == nil && readOnlyRoot {
            problems.append("PROMETHEUS_MULTIPROC_DIR=\(directory) is on no volume of container \(self.container), whose root filesystem is "
                + "read-only: the exporter's on_starting cannot create it and the workers cannot write their files; mount an emptyDir "
                + "shared by the master and its workers there")
        }
    }
}

extension ExporterConfig.Mode {
    /// Whether metrics go through Redis (and the Redis audit and expiry apply).
    public var usesRedis: Bool { self != .multiprocess }
}

/// The exporter's YAML configuration file, validated and turned into env settings as its loader
/// (`gunicorn_prometheus_exporter/config/loader.py`) does; errors carry the loader's own messages.
public enum ExporterYAML {
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func settings(_ text: String) throws -> [String: String] {
        let root: JSONValue
        do {
            root = try ManifestLoader.loadValue(yaml: text, file: "exporter YAML")
        } catch let error as KubeError {
            throw Invalid(description: "Invalid YAML in configuration file: \(error.message)")
        }
        guard case .object = root else { throw Invalid(description: "Configuration file must contain a dictionary at the root level") }
        guard let exporter = root["exporter"] else { throw Invalid(description: "Configuration must contain 'exporter' section") }
        guard case .object = exporter else { throw Invalid(description: "'exporter' section must be a dictionary") }
        for section in ["prometheus", "gunicorn"] where exporter[section] == nil {
            throw Invalid(description: "Missing required section: exporter.\(section)")
        }
        guard let prometheus = exporter["prometheus"], case .object = prometheus else { throw Invalid(description: "'exporter.prometheus' must be a dictionary") }
        for field in ["metrics_port", "bind_address"] where prometheus[field] == nil {
            throw Invalid(description: "Missing required field: exporter.prometheus.\(field)")
        }
        guard let gunicorn = exporter["gunicorn"], case .object = gunicorn else { throw Invalid(description: "'exporter.gunicorn' must be a dictionary") }
        if let redis = exporter["redis"], redis.objectValue == nil { throw Invalid(description: "'exporter.redis' must be a dictionary") }

        var env: [String: String] = [:]
        func put(_ key: String, _ value: JSONValue?, lowercased: Bool = false) {
            guard let value, value != .null else { return }
            let text = scalar(value)
            env[key] = lowercased ? text.lowercased() : text
        }
        put("PROMETHEUS_METRICS_PORT", prometheus["metrics_port"])
        put("PROMETHEUS_BIND_ADDRESS", prometheus["bind_address"])
        put("PROMETHEUS_MULTIPROC_DIR", prometheus["multiproc_dir"])
        put("GUNICORN_WORKERS", gunicorn["workers"])
        put("GUNICORN_TIMEOUT", gunicorn["timeout"])
        put("GUNICORN_KEEPALIVE", gunicorn["keepalive"])
        if let redis = exporter["redis"], pythonTruthy(redis["enabled"]) {
            env["REDIS_ENABLED"] = "true"
            for (key, name) in [("host", "REDIS_HOST"), ("port", "REDIS_PORT"), ("db", "REDIS_DB"), ("key_prefix", "REDIS_KEY_PREFIX"),
                                ("ttl_seconds", "REDIS_TTL_SECONDS"), ("password", "REDIS_PASSWORD")] {
                put(name, redis[key])
            }
            put("REDIS_TTL_DISABLED", redis["ttl_disabled"], lowercased: true)
        }
        return env
    }

    /// `if value:` in Python (the loader's `redis_config.get("enabled", False)`).
    private static func pythonTruthy(_ value: JSONValue?) -> Bool {
        switch value {
        case .bool(let flag)?: return flag
        case .string(let text)?: return !text.isEmpty
        case .number(let number)?: return number != 0
        case .array(let items)?: return !items.isEmpty
        case .object(let fields)?: return !fields.isEmpty
        default: return false
        }
    }

    /// A YAML scalar as Python's `str()` writes it: integers without a fraction, booleans as True/False.
    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .bool(let flag): return flag ? "True" : "False"
        case .number(let number): return number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
        default: return "\(value)"
        }
    }
}
