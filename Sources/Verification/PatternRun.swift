import Findings
import Foundation
import Processes
import KubeClient
import KubeModel
import MetricRules
import RESP

/// One end-to-end verification of a deployment pattern, as typed phases callable one by one from Swift
/// (each returns values and findings) or all together with `run()`, which also times every phase into the
/// report and always cleans up:
///
/// exporter → preflight → apply → wait → traffic → scrape → workers → logs → lifecycle → redis → expiry → cleanup
///
/// ```swift
/// let run = PatternRun(api: api, options: .init(pattern: .daemonset, nodes: 3, manifests: manifests))
/// try await run.createNamespace()
/// let applied = try await run.apply()
/// let rollout = try await run.wait(applied)
/// let targets = try await run.targets(applied)
/// _ = await run.traffic(targets)
/// let metrics = await run.scrape(targets)
/// _ = await run.cleanup()
/// ```
public struct PatternRun: Sendable {
    public struct Options: Sendable {
        public var pattern: Pattern
        /// The cluster size the run expects (control plane included, as kind counts it).
        public var nodes: Int
        /// The pattern's manifests and Redis's, unprepared (see `ManifestPreparation`).
        public var manifests: [Manifest]
        public var runID: String
        /// The run namespace is `<namespacePrefix>-<runID>`; kverify creates it and deletes only it.
        public var namespacePrefix: String
        public var appImage: String?
        public var redisImage: String?
        public var redisTTLSeconds: Int
        public var environment: [ManifestPreparation.EnvOverride]
        /// Deadline of the rollout wait.
        public var timeout: Duration
        public var unschedulableGrace: Duration
        /// Leave the namespace behind (for debugging).
        public var keep: Bool
        /// Reach Redis here instead of through its NodePort.
        public var redisAddress: RedisEndpoint?
        /// How Redis is reached without `redisAddress` (`RedisAccessRoute`).
        public var redisAccess: RedisAccessRoute = .auto
        public var requestsPerPod: Int
        /// Observe every key expire after the app is stopped (TTL × 2 + 10 s at most).
        public var observeExpiry: Bool
        /// Send TTIN, TTOU and HUP to the gunicorn master of `lifecyclePods` app pods and check what each implies
        /// (`Lifecycle`).
        public var lifecycle: Bool = true
        public var lifecyclePods: Int = 1
        /// At the end of the lifecycle phase, delete the first app pod and check its graceful end and its
        /// replacement (`Shutdown`).
        public var shutdown: Bool = true
        /// Keep the manifests' fixed nodePorts (see `ManifestPreparation.stripNodePorts`).
        public var fixedNodePorts: Bool = false
        /// How each pod's metrics and app endpoints are found (`--metrics-port`, `--app-port`, `--path`, …).
        public var endpointDiscovery = EndpointDiscovery()

        public init(pattern: Pattern, nodes: Int, manifests: [Manifest], runID: String = RunLabel.newID(),
                    namespacePrefix: String = "kverify", appImage: String? = nil, redisImage: String? = nil,
                    redisTTLSeconds: Int = 30, environment: [ManifestPreparation.EnvOverride] = [],
                    timeout: Duration = .seconds(180), unschedulableGrace: Duration = .seconds(15), keep: Bool = false,
                    redisAddress: RedisEndpoint? = nil, requestsPerPod: Int = 20, observeExpiry: Bool = true) {
            self.pattern = pattern
            self.nodes = nodes
            self.manifests = manifests
            self.runID = runID
            self.namespacePrefix = namespacePrefix
            self.appImage = appImage
            self.redisImage = redisImage
            self.redisTTLSeconds = redisTTLSeconds
            self.environment = environment
            self.timeout = timeout
            self.unschedulableGrace = unschedulableGrace
            self.keep = keep
            self.redisAddress = redisAddress
            self.requestsPerPod = requestsPerPod
            self.observeExpiry = observeExpiry
        }

        public var namespace: String { "\(namespacePrefix)-\(runID)" }
    }

    /// Something a caller may show while the run goes on.
    public enum Event: Sendable {
        case phaseStarted(String)
        case phaseFinished(String, seconds: Double, findings: [Finding])
        case rollout(pods: [Pod], nodes: [Node], state: RolloutState)
    }

    /// What `apply` created.
    public struct Applied: Sendable {
        public var namespace: String
        /// `Kind/name` of every workload applied.
        public var workloads: [String]
        /// The app workload (DaemonSet or Deployment) and its pod selector.
        public var appWorkload: (kind: String, name: String)
        public var appSelector: String
        /// The NodePort the cluster allocated to the Redis service, read back from the applied Service.
        public var redisNodePort: Int?
        /// Where the app workload's exporter says Redis is (`REDIS_HOST`/`REDIS_PORT`), when it says.
        public var redis: RedisAccess.Declared?
        /// Sidecar Deployments kverify gave a spread constraint (they had no spread rule).
        public var spreadAdded: [String] = []
    }

    public let api: any KubeAPI
    public let options: Options
    public var onEvent: (@Sendable (Event) -> Void)?
    /// The exporter's settings and mode in the app workload as the run applies it (kverify's env included); nil when
    /// its containers carry none of the exporter's variables. Read once from the files: every phase uses the same.
    public let exporter: ExporterConfig?

    public init(api: any KubeAPI, options: Options, onEvent: (@Sendable (Event) -> Void)? = nil) {
        self.api = api
        self.options = options
        self.onEvent = onEvent
        let prepared = Self.preparedManifests(options)
        let workload = prepared.first { $0.kind == options.pattern.workloadKind && !ManifestPreparation.isRedisWorkload($0.object) }
        exporter = workload.flatMap { ExporterConfig.read(workload: $0.object, manifests: prepared.map(\.object)) }
    }

    public var target: String { "\(options.pattern) \(options.namespace) (\(options.nodes) nodes)" }

    // MARK: Phases

    /// Reachable, at least `nodes` Ready nodes, the permissions a run uses.
    public func preflight() async throws -> [Finding] {
        try await Preflight(readyNodes: options.nodes).run(api)
    }

    /// Creates the run namespace, labelled with the run id (so `kubectl get ns -l kverify.io/run` finds leftovers
    /// of a killed run). Fails when it exists: kverify never adopts objects it did not create.
    public func createNamespace() async throws {
        let namespace = options.namespace
        // `KubeAPI.createNamespace` treats AlreadyExists as success, so existence is checked first (run ids are
        // random: a race with another creator of this exact name is not a practical concern).
        do {
            _ = try await api.get(.namespaces, name: namespace, namespace: nil)
            throw KubeError(.alreadyExists, "namespace \(namespace) already exists; kverify creates a fresh namespace per run and never "
                + "adopts one. Pick another --namespace prefix, or delete it if a killed run left it (kubectl delete namespace \(namespace))")
        } catch let error as KubeError where error.code == .notFound {}
        // Made with its run label in one request: a namespace this run may have made always says so, which is what
        // `cleanup` checks after an interruption that left the answer unknown.
        let labelled: JSONValue = ["apiVersion": "v1", "kind": "Namespace",
                                   "metadata": ["name": .string(namespace), "labels": .object([RunLabel.key: .string(options.runID)])]]
        _ = try await api.apply(labelled, resource: .namespaces, fieldManager: "kverify", force: false)
    }

    /// How far the run got in making its namespace; `cleanup` deletes only a namespace that is this run's.
    public enum NamespaceCreation: Sendable {
        /// `createNamespace()` was not called: nothing to clean up.
        case notAttempted
        /// Called, and it did not return (an interruption, an error): the namespace may exist.
        case requested
        /// `createNamespace()` returned.
        case confirmed
    }

    /// The manifests as the run applies them (`ManifestPreparation`).
    public func preparedManifests() -> [Manifest] { Self.preparedManifests(options) }

    private static func preparedManifests(_ options: Options) -> [Manifest] {
        ManifestPreparation(pattern: options.pattern, namespace: options.namespace, runID: options.runID, nodes: options.nodes,
                            appImage: options.appImage, redisImage: options.redisImage, redisTTLSeconds: options.redisTTLSeconds,
                            environment: options.environment, stripNodePorts: !options.fixedNodePorts).prepare(options.manifests)
    }

    /// Server-side applies the prepared manifests into the run namespace (made by `createNamespace()`) with field
    /// manager `kverify`, and reads back what the cluster allocated.
    public func apply() async throws -> Applied {
        let namespace = options.namespace
        var applied = Applied(namespace: namespace, workloads: [], appWorkload: ("", ""), appSelector: "", redisNodePort: nil)
        let prepared = preparedManifests()
        let objects = prepared.map(\.object)
        // Kinds the offline list does not know (custom resources) get their scope from discovery.
        try await ManifestScope.refuseClusterScoped(prepared, api: api)
        let stored = try await api.apply(prepared, fieldManager: "kverify", force: true)
        for (manifest, data) in zip(prepared, stored) {
            guard let object = try? JSONValue.parse(json: data) else { continue }
            if ManifestPreparation.workloadKinds.contains(manifest.kind) {
                applied.workloads.append("\(manifest.kind)/\(manifest.name)")
                if !ManifestPreparation.isRedisWorkload(manifest.object) && manifest.kind == options.pattern.workloadKind {
                    applied.appWorkload = (manifest.kind, manifest.name)
                    // REDIS_HOST from the env, else from the exporter's YAML.
                    applied.redis = applied.redis ?? RedisAccess.declared(inWorkload: manifest.object)
                        ?? ExporterConfig.read(workload: manifest.object, manifests: objects).flatMap { RedisAccess.declared(settings: $0.settings) }
                    if options.pattern == .sidecar, let original = options.manifests.first(where: { $0.kind == manifest.kind && $0.name == manifest.name }),
                       ManifestPreparation.addsSpread(original.object) {
                        applied.spreadAdded.append(manifest.name)
                    }
                    if case .object(let labels)? = object.value(at: ["spec", "selector", "matchLabels"]) {
                        applied.appSelector = labels.compactMapValues(\.stringValue).sorted { $0.key < $1.key }
                            .map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    }
                }
            }
            if manifest.kind == "Service", object.value(at: ["spec", "selector", "app"])?.stringValue == "redis" {
                applied.redisNodePort = object.value(at: ["spec", "ports"])?.arrayValue?.first?["nodePort"]?.intValue
            }
        }
        return applied
    }

    /// Waits for every workload (Redis and the app) to be rolled out, failing fast with a diagnosis.
    public func wait(_ applied: Applied) async throws -> RolloutWait.Outcome {
        let rules = RolloutRules(pattern: options.pattern, nodes: options.nodes, unschedulableGrace: options.unschedulableGrace)
        let wait = RolloutWait(rules: rules, namespace: applied.namespace, workloads: Set(applied.workloads), timeout: options.timeout)
        let onEvent = self.onEvent
        // No listener, no progress snapshots: each one sorts every pod and node of the run.
        var progress: RolloutWait.Progress?
        if let onEvent { progress = { pods, nodes, state in onEvent(.rollout(pods: pods, nodes: nodes, state: state)) } }
        return try await wait.run(api, progress: progress)
    }

    /// Findings for a rollout outcome; failing pods get their events and log tails first.
    public func rolloutFindings(_ outcome: RolloutWait.Outcome, namespace: String) async -> [Finding] {
        switch outcome.result {
        case .ready:
            var findings = outcome.workloads.sorted { $0.name < $1.name }.map { workload in
                Finding.pass("rollout.workload", subject: workload.reference,
                             expected: "generation observed; current, updated, ready, available == desired",
                             observed: "desired \(workload.desired), ready \(workload.ready), available \(workload.available)")
            }
            findings += outcome.pods.map { pod in
                Finding.pass("rollout.pod", subject: "node/\(pod.nodeName ?? "?") pod/\(pod.name)", expected: "Ready, every container Ready",
                             observed: "Ready")
            }
            if options.pattern == .daemonset {
                let controlPlanes = outcome.nodes.filter(\.isTaintedControlPlane).count
                let want = max(options.nodes - controlPlanes, 0)
                let app = outcome.workloads.first { !$0.isRedis && $0.kind == .daemonSet }
                let covered = app?.desired ?? 0
                findings.append(Finding(checkID: "rollout.nodes-covered", subject: app?.reference ?? "DaemonSet", status: covered >= want ? .pass : .fail,
                                        expected: "a Ready pod on every node but the \(controlPlanes) tainted control plane(s): at least \(want)",
                                        observed: "\(covered) nodes, one Ready pod each"))
            }
            return findings
        case .failed(let problems):
            let enriched = await Diagnosis(namespace: namespace).enrich(problems, pods: outcome.pods, api: api)
            return Diagnosis.findings(enriched)
        case .timedOut(let missing):
            // Not-ready pods get the same diagnosis a fail-fast would have given.
            let stuck = outcome.pods.filter { !($0.isReady && $0.allContainersReady) }.map(Diagnosis.timeoutProblem)
            let enriched = await Diagnosis(namespace: namespace).enrich(stuck, pods: outcome.pods, api: api)
            return [.fail("rollout.ready", subject: "namespace/\(namespace)", expected: "every workload rolled out within \(options.timeout)",
                          observed: "still missing: " + missing.joined(separator: "; "))] + Diagnosis.findings(enriched)
        }
    }

    /// The app pods of the run, with their nodes and Redis key prefixes.
    /// The app pods, each with its endpoints found from the pod and the namespace's Services (`EndpointDiscovery`).
    /// - Throws: `KubeError(.badManifest)` for a pod without a discoverable metrics endpoint.
    public func targets(_ applied: Applied) async throws -> [PodTarget] {
        let list = try await api.list(.pods, namespace: applied.namespace, options: ListOptions(labelSelector: applied.appSelector))
        let services = try await api.list(.services, namespace: applied.namespace, options: ListOptions()).items
            .compactMap { try? JSONValue.parse(json: $0) }
        var targets: [PodTarget] = []
        for data in list.items {
            guard let object = try? JSONValue.parse(json: data),
                  object.value(at: ["metadata", "deletionTimestamp"]) == nil,
                  let name = object.value(at: ["metadata", "name"])?.stringValue else { continue }
            let endpoints = try options.endpointDiscovery.endpoints(of: object, services: services, what: "pod/\(name)")
            targets.append(PodTarget(pod: name, node: object.value(at: ["spec", "nodeName"])?.stringValue ?? "?",
                                     keyPrefix: PodTarget.keyPrefix(podObject: object), endpoints: endpoints))
        }
        return targets.sorted { $0.pod < $1.pod }
    }

    /// One finding per pod saying where kverify reaches it and which rule found each endpoint.
    public static func endpointFindings(_ targets: [PodTarget]) -> [Finding] {
        targets.map { target in
            let e = target.endpoints
            return Finding.pass("targets.endpoints", expected: "a metrics and an app endpoint",
                                observed: "metrics :\(e.metrics.port)\(e.metrics.path) (\(e.metrics.foundBy)); "
                                    + "app :\(e.app.port) \(e.trafficPaths.joined(separator: ",")) (\(e.app.foundBy))")
                .scoped(toPod: target.pod, node: target.node)
        }
    }

    public func traffic(_ targets: [PodTarget]) async -> [Finding] {
        let traffic = Traffic(namespace: options.namespace, requestsPerPod: options.requestsPerPod)
        return traffic.findings(await traffic.run(targets, api: api))
    }

    /// Per pod, 64 at a time: waits until the exporter shows the traffic, then judges that same scrape when every rule
    /// holds on it (at 500 pods a second fetch per pod cost a third of the phase); a scrape with a failure is fetched
    /// again and judged anew (`PodScrape.scrape(_:api:first:)`), as the exporter may still have been writing. The 30 s
    /// for the traffic to show are one deadline for the whole phase, not 30 s per batch of 64 pods.
    public func scrape(_ targets: [PodTarget]) async -> (metrics: [PodScrape.PodMetrics], findings: [Finding]) {
        let wait = MetricWait(api: api, namespace: options.namespace)
        let podScrape = PodScrape(namespace: options.namespace)
        let deadline = ContinuousClock.now + .seconds(30)
        let results = await boundedMap(targets.count, concurrency: 64) { index -> (Finding, PodScrape.PodMetrics) in
            let target = targets[index]
            do {
                // Past the deadline the wait still scrapes once.
                let (total, bytes) = try await wait.scrape(until: "gunicorn_worker_requests_total", of: target, .greater(0),
                                                           timeout: max(.zero, deadline - ContinuousClock.now))
                return (.pass("metrics.requests-counted", subject: target.subject, expected: "gunicorn_worker_requests_total sum > 0",
                              observed: "sum \(Lifecycle.number(total))"),
                        await podScrape.scrape(target, api: self.api, first: bytes))
            } catch {
                return (.fail("metrics.requests-counted", subject: target.subject, expected: "gunicorn_worker_requests_total sum > 0 within 30s",
                              observed: "\(error)"),
                        await podScrape.scrape(target, api: self.api))
            }
        }
        let waited = results.map(\.0).sorted { $0.subject < $1.subject }
        let metrics = results.map(\.1).sorted { $0.target.pod < $1.target.pod }
        return (metrics, waited + metrics.flatMap(\.findings) + PodScrape.perNode(metrics))
    }

    public func scanLogs(_ targets: [PodTarget], pods: [Pod]) async -> [Finding] {
        await LogScan(namespace: options.namespace).run(targets, pods: pods, api: api)
    }

    /// Where Redis answers from outside the cluster: `--redis-addr`, else the Redis NodePort on the first Ready
    /// node's InternalIP.
    public func redisEndpoint(_ applied: Applied) async throws -> RedisEndpoint? {
        try await redisRoute(applied)?.endpoint
    }

    /// Runs `body` with a Redis endpoint kverify can connect to, and how it was reached (for the report), for as long
    /// as `body` runs: `--redis-addr`; else, per `options.redisAccess`, the NodePort route (`redisRoute`), or a
    /// port-forward to the Redis pod (`RedisAccess.podPort`) — `auto` takes the NodePort when it answers within
    /// 5 s and forwards otherwise (node addresses unreachable from this host, as on Docker Desktop).
    /// - Returns: nil when no route exists (no Service, no nodePort); `body` then did not run.
    public func withRedis<T: Sendable>(_ applied: Applied, _ body: (RedisEndpoint, String) async throws -> T) async throws -> T? {
        if let address = options.redisAddress { return try await body(address, "--redis-addr") }
        var unreachable: String?
        if options.redisAccess != .portForward, let route = try await redisRoute(applied) {
            if options.redisAccess == .nodePort { return try await body(route.endpoint, route.via) }
            switch route.answered {
            case true?:
                return try await body(route.endpoint, route.via)
            case false?:
                // A NodePort twin kverify just made did not answer in its 15 s wait: no second probe.
                unreachable = "\(route.via) did not answer from here within 15 s"
            case nil:
                do {
                    try await redisCheck(route.endpoint, connectTimeout: .seconds(5)).connect().close()
                    return try await body(route.endpoint, route.via)
                } catch let error as RedisError where error.kind == .connect || error.kind == .timeout {
                    unreachable = "\(route.via) did not answer from here (\(error.message))"
                }
            }
        } else if options.redisAccess == .nodePort {
            return nil
        }
        let target = try await RedisAccess(api: api, namespace: applied.namespace).podPort(for: applied.redis)
        return try await api.withPortForward(pod: target.pod, namespace: applied.namespace, port: target.port) { forward in
            try await body(RedisEndpoint(host: "127.0.0.1", port: forward.localPort), target.via + (unreachable.map { "; \($0)" } ?? ""))
        }
    }

    /// `redisEndpoint`, and how it was reached (for the report): `--redis-addr`; else the Service the exporter's
    /// `REDIS_HOST` names, through its NodePort or a run-owned NodePort twin (`RedisAccess`); else the NodePort of
    /// the Service selecting `app=redis`. `answered` says whether a connection was tried already (for a twin made a
    /// moment ago) and how it went; nil when it was not tried.
    public func redisRoute(_ applied: Applied) async throws -> (endpoint: RedisEndpoint, via: String, answered: Bool?)? {
        if let address = options.redisAddress { return (address, "--redis-addr", nil) }
        var route: (port: Int, via: String, created: Bool)?
        if let declared = applied.redis {
            route = try await RedisAccess(api: api, namespace: applied.namespace).nodePort(for: declared)
        } else if let port = applied.redisNodePort {
            route = (port, "NodePort \(port) of the Service selecting app=redis", false)
        }
        guard let route else { return nil }
        let nodes = try await api.nodes()
        let address = nodes.filter(\.isReady).compactMap { $0.status?.addresses.first { $0.type == "InternalIP" }?.address }.first
        guard let address else { return nil }
        let endpoint = RedisEndpoint(host: address, port: route.port)
        var answered: Bool?
        if route.created {
            // A Service made a moment ago is reachable once kube-proxy has programmed it (iptables on a real node,
            // a listener on the sim): wait for a connection, 15 s at most, before the audit takes it as the answer.
            let check = redisCheck(endpoint, connectTimeout: .seconds(2))
            let deadline = ContinuousClock.now + .seconds(15)
            answered = false
            while ContinuousClock.now < deadline {
                if let connection = try? await check.connect() {
                    connection.close()
                    answered = true
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        return (endpoint, "\(route.via) on node address \(address)", answered)
    }

    /// The Redis check with the exporter's own login from the manifests (`REDIS_PASSWORD` from a Secret of the
    /// files, `REDIS_DB`), so the audit reads the database the exporter writes.
    func redisCheck(_ endpoint: RedisEndpoint, connectTimeout: Duration = .seconds(5)) -> RedisCheck {
        return RedisCheck(endpoint: endpoint, ttlSeconds: options.redisTTLSeconds, connectTimeout: connectTimeout,
                          credentials: exporter?.redisPassword.map { RedisCredentials(password: $0) }, database: exporter?.redisDatabase ?? 0)
    }

    /// - Parameter killedWriters: workers the lifecycle's signals interrupted mid-write, whose keys without a TTL are reported as theirs (a
    ///   warning) rather than as the exporter's TTL handling failing.
    public func redisAudit(_ targets: [PodTarget], endpoint: RedisEndpoint, killedWriters: [Lifecycle.HungWorker] = []) async throws -> [Finding] {
        var check = redisCheck(endpoint)
        check.killedWriters = killedWriters
        return try await check.audit(targets)
    }

    /// Deletes the app workload (its pods stop writing; kubelet probes count as requests, so keys are refreshed
    /// for as long as the pods run) and waits, watching, until its pods are gone (90 s at most).
    public func stopApp(_ applied: Applied) async throws {
        let resource: Resource = applied.appWorkload.kind == "DaemonSet" ? .daemonSets : .deployments
        do {
            try await api.delete(resource, name: applied.appWorkload.name, namespace: applied.namespace, propagation: .background)
        } catch let error as KubeError where error.code == .notFound {}
        let options = ListOptions(labelSelector: applied.appSelector)
        let api = self.api
        let timeout = KubeError(.timedOut, "pods \(applied.appSelector) in \(applied.namespace) still exist 90s after \(applied.appWorkload.kind)/\(applied.appWorkload.name) was deleted")
        try await withDeadline(.seconds(90), onTimeout: { timeout }) {
            var remaining: Set<String> = []
            for try await update in api.retryingWatch(.pods, namespace: applied.namespace, options: options) {
                switch update.type {
                case .synced: remaining = Set(update.snapshot.compactMap(Self.objectName))
                case .added, .modified: if let name = update.object.flatMap(Self.objectName) { remaining.insert(name) }
                case .deleted: if let name = update.object.flatMap(Self.objectName) { remaining.remove(name) }
                }
                if remaining.isEmpty { return }
            }
        }
    }

    private static func objectName(_ data: Data) -> String? {
        (try? JSONValue.parse(json: data))?.value(at: ["metadata", "name"])?.stringValue
    }

    /// Stops the app (`stopApp`) and watches every key expire. Redis' clock is read first, so that a key without a
    /// TTL the app wrote while it shut down is told apart from one it left earlier.
    public func redisExpiry(_ targets: [PodTarget], applied: Applied, endpoint: RedisEndpoint,
                            killedWriters: [Lifecycle.HungWorker] = []) async throws -> [Finding] {
        var check = redisCheck(endpoint)
        check.killedWriters = killedWriters
        // Without Redis' clock (TIME refused or renamed) every key without a TTL is judged as before: a failure.
        let stopping = try? await check.serverTime()
        try await stopApp(applied)
        return try await check.observeExpiry(targets, shutdownSince: stopping)
    }

    /// Deletes the run namespace (and so everything kverify applied) and waits until it is gone — unless
    /// `keep`. Pass how far `createNamespace()` got: a namespace it may or may not have made is deleted only when it
    /// carries this run's label.
    public func cleanup(createdNamespace: NamespaceCreation = .confirmed) async -> Finding {
        let namespace = options.namespace
        let nothing = Finding.pass("cleanup.namespace", subject: "namespace/\(namespace)", expected: "nothing left behind", observed: "nothing was created")
        switch createdNamespace {
        case .notAttempted:
            return nothing
        case .requested:
            // The create may have reached the server before an interruption cut its answer off: the namespace is this
            // run's if it carries this run's label (only this run's request sets it), and is then deleted below.
            do {
                let object = try decodeObject(JSONValue.self, try await api.get(.namespaces, name: namespace, namespace: nil), what: "namespace \(namespace)")
                guard object.string(at: "metadata", "labels", RunLabel.key) == options.runID else { return nothing }
            } catch let error as KubeError where error.code == .notFound {
                return nothing
            } catch {
                return .fail("cleanup.namespace", subject: "namespace/\(namespace)", expected: "nothing left behind",
                             observed: "the run was stopped while creating it, and whether it exists could not be read: \(error)",
                             detail: "check with: kubectl get namespace \(namespace) --show-labels (this run's label: \(RunLabel.key)=\(options.runID))")
            }
        case .confirmed:
            break
        }
        if options.keep {
            return .warn("cleanup.namespace", subject: "namespace/\(namespace)", expected: "deleted", observed: "kept (--keep)",
                         detail: "delete it with: kubectl delete namespace \(namespace)")
        }
        do {
            try await api.deleteNamespace(namespace, waitUntilGone: .seconds(120))
            return .pass("cleanup.namespace", subject: "namespace/\(namespace)", expected: "deleted", observed: "gone")
        } catch {
            return .fail("cleanup.namespace", subject: "namespace/\(namespace)", expected: "deleted within 120s", observed: "\(error)",
                         detail: "delete it with: kubectl delete namespace \(namespace)")
        }
    }
}
