import KubeClient
import KubeModel

/// How a run rewrites the pattern's manifests before applying them. Pure: the same manifests and settings give
/// the same objects, so every rule here has a unit test without a cluster.
///
/// - every object goes into the run namespace and carries `kverify.io/run=<id>` (pod templates too, so pods can
///   be listed by run);
/// - `--image-app` / `--image-redis` replace the images of the app workload's and the Redis workload's
///   containers (init containers included); the Redis workload is the one whose pod template is labelled
///   `app=redis`;
/// - `REDIS_TTL_SECONDS` is set on every container that talks to Redis (short, so expiry can be observed), also when
///   the exporter's YAML enables Redis (env wins over it);
/// - extra environment overrides (`container → NAME=value`) for experiments and failure tests;
/// - the sidecar Deployment gets `replicas = nodes`, and, when it has no spread rule of its own (no
///   `topologySpreadConstraints`, no `podAntiAffinity`), one: `--nodes N` means N pods on N distinct nodes, and without
///   a rule the scheduler may stack them (`addsSpread` says when; the apply finding reports it);
/// - fixed `nodePort`s are removed so concurrent runs do not clash: the cluster allocates one, read back after apply.
public struct ManifestPreparation: Sendable {
    public struct EnvOverride: Sendable, Hashable {
        /// Container name; nil means every container of the app workload.
        public var container: String?
        public var name: String
        public var value: String
        public init(container: String?, name: String, value: String) {
            self.container = container
            self.name = name
            self.value = value
        }
    }

    public var pattern: Pattern
    public var namespace: String
    public var runID: String
    public var nodes: Int
    public var appImage: String?
    public var redisImage: String?
    public var redisTTLSeconds: Int
    public var environment: [EnvOverride]
    /// Remove fixed `nodePort`s (the default). Keeping them lets port mappings made for them (kind/k3d on macOS,
    /// see scripts/setup.sh) reach the run, at the price of one run per cluster at a time.
    public var stripNodePorts: Bool

    public init(pattern: Pattern, namespace: String, runID: String, nodes: Int, appImage: String? = nil, redisImage: String? = nil,
                redisTTLSeconds: Int = 30, environment: [EnvOverride] = [], stripNodePorts: Bool = true) {
        self.pattern = pattern
        self.namespace = namespace
        self.runID = runID
        self.nodes = nodes
        self.appImage = appImage
        self.redisImage = redisImage
        self.redisTTLSeconds = redisTTLSeconds
        self.environment = environment
        self.stripNodePorts = stripNodePorts
    }

    static let workloadKinds: Set<String> = ["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet"]

    /// Whether a workload manifest is the Redis one (its pod template is labelled `app=redis`).
    public static func isRedisWorkload(_ object: JSONValue) -> Bool {
        object.value(at: ["spec", "template", "metadata", "labels", "app"])?.stringValue == "redis"
    }

    public func prepare(_ manifests: [Manifest]) -> [Manifest] {
        let objects = manifests.map(\.object)
        return manifests.filter { $0.kind != "Namespace" }.map { manifest in
            var prepared = manifest
            // Redis enabled by the exporter's YAML (YAML_CONFIG_PATH) counts as REDIS_ENABLED in the env.
            let yamlEnablesRedis = Self.workloadKinds.contains(manifest.kind)
                && ExporterConfig.read(workload: manifest.object, manifests: objects).map { $0.redisEnabled && $0.fromYAML.contains("REDIS_ENABLED") } == true
            prepared.object = prepare(object: manifest.object, kind: manifest.kind, yamlEnablesRedis: yamlEnablesRedis)
            return prepared
        }
    }

    func prepare(object original: JSONValue, kind: String, yamlEnablesRedis: Bool = false) -> JSONValue {
        var object = original
        object.set(["metadata", "namespace"], to: .string(namespace))
        object.set(["metadata", "labels", RunLabel.key], to: .string(runID))
        if Self.workloadKinds.contains(kind) {
            object.set(["spec", "template", "metadata", "labels", RunLabel.key], to: .string(runID))
            let isRedis = Self.isRedisWorkload(original)
            let image = isRedis ? redisImage : appImage
            for list in ["containers", "initContainers"] {
                object.updateEach(at: ["spec", "template", "spec", list]) { container in
                    if let image { container.set(["image"], to: .string(image)) }
                    guard !isRedis else { return }
                    if Self.talksToRedis(container, yamlEnablesRedis: yamlEnablesRedis) {
                        Self.setEnv(&container, "REDIS_TTL_SECONDS", String(redisTTLSeconds))
                    }
                    let name = container["name"]?.stringValue
                    for override in environment where override.container == nil || override.container == name {
                        Self.setEnv(&container, override.name, override.value)
                    }
                }
            }
            if pattern == .sidecar, kind == "Deployment", !isRedis {
                object.set(["spec", "replicas"], to: .number(Double(nodes)))
                if Self.addsSpread(original), let selector = original.value(at: ["spec", "selector", "matchLabels"]) {
                    object.set(["spec", "template", "spec", "topologySpreadConstraints"], to: [
                        ["maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                         "labelSelector": ["matchLabels": selector]],
                    ])
                }
            }
        }
        if kind == "Service" && stripNodePorts {
            object.updateEach(at: ["spec", "ports"]) { port in port.set(["nodePort"], to: nil) }
        }
        return object
    }

    /// Whether a sidecar Deployment gets kverify's spread constraint: it has neither topology spread constraints nor
    /// pod anti-affinity of its own (a rule the user wrote is kept as written).
    public static func addsSpread(_ deployment: JSONValue) -> Bool {
        let spec = deployment.value(at: ["spec", "template", "spec"])
        return (spec?["topologySpreadConstraints"]?.arrayValue ?? []).isEmpty && spec?.value(at: ["affinity", "podAntiAffinity"]) == nil
    }

    /// A container that reads or writes the exporter's Redis keys: it has `REDIS_ENABLED` in its env, or reads the
    /// exporter's YAML (`YAML_CONFIG_PATH`) and that YAML enables Redis. Env wins over the YAML, so the run's TTL
    /// set here is the one the exporter uses.
    static func talksToRedis(_ container: JSONValue, yamlEnablesRedis: Bool = false) -> Bool {
        let names = (container["env"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        return names.contains("REDIS_ENABLED") || (yamlEnablesRedis && names.contains("YAML_CONFIG_PATH"))
    }

    /// Sets `name` in a container's env list, replacing a `value` or `valueFrom`, keeping the order.
    static func setEnv(_ container: inout JSONValue, _ name: String, _ value: String) {
        var env = container["env"]?.arrayValue ?? []
        let entry: JSONValue = ["name": .string(name), "value": .string(value)]
        if let index = env.firstIndex(where: { $0["name"]?.stringValue == name }) {
            env[index] = entry
        } else {
            env.append(entry)
        }
        container.set(["env"], to: .array(env))
    }
}
