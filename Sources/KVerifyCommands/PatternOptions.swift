import ArgumentParser
import Findings
import Foundation
import Processes
import KubeClient
import KubeConfig
import KubeModel
import KubeSim
import SimFaults
import SimNode
import SimStore
import RESP
import Synchronization
import Verification

#if canImport(Glibc)
import Glibc
#endif

/// The options `kverify daemonset` and `kverify sidecar` share, and the one place that runs a pattern:
/// resolve manifests (files or `helm template`), optionally start an embedded sim, run `PatternRun` with a
/// SIGINT/SIGTERM/SIGHUP handler that cancels it (cleanup still runs), show progress, print the report.
struct PatternOptions: ParsableArguments {
    @Option(help: "Cluster size the run expects: at least this many Ready nodes, control plane included (kind counts so).")
    var nodes = 3

    @Option(help: "kubeconfig file (default: $KUBECONFIG, a ':'-separated merged list, then ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "kubeconfig context (default: its current-context).")
    var context: String?

    @Option(help: ArgumentHelp("Prefix of the run namespace <prefix>-<run id>. kverify always creates a fresh namespace and deletes only that.",
                               valueName: "prefix"))
    var namespace = "kverify"

    @Option(help: "How to talk to the cluster: api (REST over libcurl) or kubectl.")
    var backend: BackendChoice = .api

    @Option(help: ArgumentHelp("Image for the app, exporter and init containers (default: the manifests', kverify-demo-app:dev).", valueName: "image"))
    var imageApp: String?

    @Option(help: ArgumentHelp("Image for Redis (default: the manifests', redis:7-alpine).", valueName: "image"))
    var imageRedis: String?

    @Option(help: ArgumentHelp("REDIS_TTL_SECONDS for the run: short, so the expiry of every key can be observed.", valueName: "seconds"))
    var redisTTL = 30

    @Option(help: ArgumentHelp("Extra environment for the app pods' containers (repeatable): NAME=VALUE for every container, or CONTAINER:NAME=VALUE.",
                               valueName: "[container:]name=value"))
    var env: [String] = []

    @Option(help: "Deadline for the rollout (every pod Ready), e.g. 180s or 3m (at most 168h).")
    var timeout = DurationArgument(.seconds(180), text: "180s")

    @Option(help: "Requests sent to every pod's app port before scraping.")
    var requests = 20

    @Option(help: ArgumentHelp("The exporter's port on every app pod, instead of discovering it (prometheus.io/port on the pod template or on a Service selecting it, else a container port named metrics).", valueName: "port"))
    var metricsPort: Int?

    @Option(help: ArgumentHelp("The metrics path, instead of prometheus.io/path or /metrics.", valueName: "path"))
    var metricsPath: String?

    @Option(help: ArgumentHelp("The app's port on every app pod, instead of the container port named http (else the first container port).", valueName: "port"))
    var appPort: Int?

    @Option(name: .customLong("path"), help: ArgumentHelp("A path traffic is sent to (repeatable, in turn; default /).", valueName: "path"))
    var trafficPaths: [String] = []

    @Flag(help: "Keep the run namespace afterwards (for debugging); kverify prints how to delete it.")
    var keep = false

    @Flag(help: "Skip stopping the app and watching every Redis key expire (saves up to 2 × TTL + 10 s).")
    var skipExpiry = false

    @Flag(help: "Skip the lifecycle phase (TTIN, TTOU, HUP and USR1 to the gunicorn master, QUIT and ABRT to a worker, through exec, and what each must show; then the graceful delete of one pod).")
    var skipLifecycle = false

    @Flag(help: "Skip the end of the lifecycle phase that deletes one app pod: its Terminating state, each container's exit on SIGTERM within its grace period, and the controller's replacement Ready and serving.")
    var skipShutdown = false

    @Option(help: ArgumentHelp("How many app pods the lifecycle phase signals (one after the other).", valueName: "n"))
    var lifecyclePods = 1

    @Option(help: ArgumentHelp("Reach the run's Redis here instead of through its NodePort on a node address.", valueName: "host:port"))
    var redisAddr: String?

    @Option(help: ArgumentHelp("Without --redis-addr, how to reach Redis: auto (its NodePort on a node address when that answers from here within 5 s, else a port-forward to the Redis pod through the API server, as on Docker Desktop), node-port, or port-forward (no NodePort twin is created).",
                               valueName: "route"))
    var redisAccess: RedisAccessRoute = .auto

    @Flag(help: "Keep the manifests' fixed nodePorts (Redis 30379) instead of letting the cluster allocate them, so port mappings made for them reach the run (kind/k3d on macOS: --redis-addr 127.0.0.1:30379). One run per cluster at a time.")
    var fixedNodePorts = false

    @Option(name: [.customShort("f"), .customLong("filename")],
            help: ArgumentHelp("Your manifests instead of the bundled ones, as kubectl takes them (repeatable): a file, a directory (its *.yaml, *.yml and *.json, in name order), or - for standard input.",
                               valueName: "path"))
    var filenames: [String] = []

    @Option(help: ArgumentHelp("Directory with redis.yaml, daemonset.yaml and sidecar.yaml (default: ./manifests, else the checkout's).", valueName: "dir"))
    var manifests: String?

    @Option(help: ArgumentHelp("Render this Helm chart (a directory or a .tgz) with `helm template` and apply that instead of the manifests (needs helm on PATH; scripts/bootstrap.sh installs it into .tools/bin).", valueName: "chart"))
    var chart: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("A chart value for --chart, passed to helm as --set (repeatable).", valueName: "key=value"))
    var chartSets: [String] = []

    @Option(name: .customLong("values"), help: ArgumentHelp("A values file for --chart, passed to helm as --values (repeatable).", valueName: "file"))
    var chartValues: [String] = []

    @Flag(help: "Start an embedded simulated cluster with --nodes nodes for this run and stop it afterwards.")
    var sim = false

    @Option(help: ArgumentHelp("With --sim: the runtime map (how each image runs on this machine; see sim/runtime.yaml), for your own image names.",
                               valueName: "file"))
    var simRuntime: String?

    @Option(help: ArgumentHelp("With --sim: faults the sim injects (API errors, watch drops, crashes…; see sim/faults.example.yaml).",
                               valueName: "file"))
    var faults: String?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if chart != nil && !filenames.isEmpty { throw ValidationError("--chart and -f/--filename both name the manifests: give one") }
        if chart == nil && (!chartSets.isEmpty || !chartValues.isEmpty) { throw ValidationError("--set and --values are chart values: they need --chart") }
        if filenames.filter({ $0 == "-" }).count > 1 { throw ValidationError("-f - (standard input) can be given once") }
        guard (1...1000).contains(nodes) else { throw ValidationError("--nodes must be between 1 and 1000, got \(nodes)") }
        guard (1...KVerify.Redis.maximumTTL).contains(redisTTL) else {
            throw ValidationError("--redis-ttl must be positive seconds, at most \(KVerify.Redis.maximumTTL) (a year), got \(redisTTL)")
        }
        guard requests > 0 else { throw ValidationError("--requests must be positive, got \(requests)") }
        guard lifecyclePods > 0 else { throw ValidationError("--lifecycle-pods must be positive, got \(lifecyclePods) (--skip-lifecycle skips the phase)") }
        for (name, port) in [("--metrics-port", metricsPort), ("--app-port", appPort)] {
            if let port, !(1...65535).contains(port) { throw ValidationError("\(name) must be a port between 1 and 65535, got \(port)") }
        }
        // A space or a control character (ESC, tab, newline) is no URL path: refused here, not after minutes of retries.
        for path in trafficPaths + (metricsPath.map { [$0] } ?? [])
        where !path.hasPrefix("/") || path.unicodeScalars.contains(where: { $0 == " " || $0.properties.generalCategory == .control }) {
            throw ValidationError("--path/--metrics-path '\(path)': an absolute URL path (starting with /, no spaces or control characters)")
        }
        guard namespace.range(of: "^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$", options: .regularExpression) != nil else {
            throw ValidationError("--namespace '\(namespace)': a prefix of lower-case letters, digits and '-', at most 42 characters")
        }
        if let redisAddr, case .failure(let error) = RedisEndpoint.parse(redisAddr) { throw ValidationError("--redis-addr \(error)") }
        _ = try environment()
        if sim && (kubeconfig != nil || context != nil) { throw ValidationError("--sim makes its own kubeconfig; drop --kubeconfig/--context") }
        if chart != nil && manifests != nil { throw ValidationError("give --chart or --manifests, not both") }
        if faults != nil && !sim { throw ValidationError("--faults injects faults into the embedded sim: it needs --sim") }
        if simRuntime != nil && !sim { throw ValidationError("--sim-runtime maps images for the embedded sim: it needs --sim") }
    }

    func environment() throws -> [ManifestPreparation.EnvOverride] {
        try env.map { text in
            guard let equals = text.firstIndex(of: "=") else { throw ValidationError("--env '\(text)': expected [container:]NAME=VALUE") }
            let left = text[..<equals], value = String(text[text.index(after: equals)...])
            let parts = left.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let (container, name) = parts.count == 2 ? (Optional(parts[0]), parts[1]) : (nil, parts[0])
            if container == "" { throw ValidationError("--env '\(text)': the container name before ':' is empty; give CONTAINER:NAME=VALUE, or NAME=VALUE for every container") }
            guard !name.isEmpty else { throw ValidationError("--env '\(text)': the variable name is empty") }
            return ManifestPreparation.EnvOverride(container: container, name: name, value: value)
        }
    }

    var endpointDiscovery: EndpointDiscovery {
        EndpointDiscovery(metricsPort: metricsPort, metricsPath: metricsPath, appPort: appPort,
                          trafficPaths: trafficPaths.isEmpty ? ["/"] : trafficPaths)
    }

    // MARK: Running

    func run(_ pattern: Pattern) async throws {
        let loaded = try await loadManifests(pattern)
        do {
            try ManifestScope.check(loaded, pattern: pattern)
            try endpointDiscovery.check(loaded, pattern: pattern)
        } catch {
            throw KVerifyError(.usageOrInput, error.message)
        }
        try EnvOverrideCheck.validate(try environment(), texts: env, manifests: loaded,
                                      source: chart.map { "--chart \($0)" } ?? pattern.manifestFile)
        let signals = SignalWaiter([SIGINT, SIGTERM, SIGHUP])
        var simulated: SimulatedCluster?
        if sim {
            try checkSimPrerequisites(pattern, manifests: loaded)
            var simOptions = SimulatedCluster.Options(nodes: nodes)
            do {
                if let faults {
                    simOptions.faults = try FaultPlan.load(path: faults)
                    if let problem = simOptions.faults.problem(forNodes: SimulatedCluster.nodeNames(nodes)) { throw SimError("\(faults): \(problem)") }
                }
                if let simRuntime {
                    _ = try RuntimeMap.load(path: simRuntime)
                    simOptions.runtimePath = simRuntime
                }
            } catch {
                throw KVerifyError(.usageOrInput, "\(error)")
            }
            do {
                simulated = try await SimulatedCluster.start(options: simOptions)
            } catch {
                throw KVerifyError(.unreachable, "the simulated cluster could not start: \(error)")
            }
        }
        let result: PatternRun.Result
        do {
            let api = try makeAPI(kubeconfig: simulated?.kubeconfigPath)
            var options = PatternRun.Options(pattern: pattern, nodes: nodes, manifests: loaded, namespacePrefix: namespace,
                                             appImage: imageApp, redisImage: imageRedis, redisTTLSeconds: redisTTL,
                                             environment: try environment(), timeout: timeout.duration, keep: keep,
                                             requestsPerPod: requests, observeExpiry: !skipExpiry)
            if let redisAddr, case .success(let endpoint) = RedisEndpoint.parse(redisAddr) { options.redisAddress = endpoint }
            options.fixedNodePorts = fixedNodePorts
            options.redisAccess = redisAccess
            options.lifecycle = !skipLifecycle
            options.shutdown = !skipShutdown
            options.lifecyclePods = lifecyclePods
            options.endpointDiscovery = endpointDiscovery
            let progress = Progress(enabled: output.output == .text && !output.quiet, live: isatty(STDOUT_FILENO) == 1)
            var onEvent: (@Sendable (PatternRun.Event) -> Void)?
            if progress.enabled { onEvent = { progress.show($0) } }
            let run = PatternRun(api: api, options: options, onEvent: onEvent)
            let task = Task { await run.run() }
            let interrupter = Task {
                let received = await signals.next()
                guard received != 0 else { return }
                FileHandle.standardError.write(Data("kverify: signal \(received): stopping, cleaning up namespace \(options.namespace)\n".utf8))
                task.cancel()
            }
            result = await task.value
            interrupter.cancel()
        } catch {
            await simulated?.stop()
            throw error
        }
        await simulated?.stop()
        try output.finish(result.report, exitStatus: ExitCodes.status(for: result))
    }

    /// `--sim` needs the network shim and the programs the runtime map runs the run's images with: checked before
    /// the sim starts, so a missing one is exit 2 with the step that fixes it.
    private func checkSimPrerequisites(_ pattern: Pattern, manifests: [Manifest]) throws {
        // The images as the run will apply them (--image-app, --image-redis).
        let prepared = ManifestPreparation(pattern: pattern, namespace: "kverify-check", runID: "check", nodes: nodes, appImage: imageApp,
                                           redisImage: imageRedis, redisTTLSeconds: redisTTL, environment: try environment(),
                                           stripNodePorts: true).prepare(manifests)
        let problems = SimPrerequisites.problems(containers: SimPrerequisites.containers(of: prepared.map(\.object)), runtimePath: simRuntime)
        guard problems.isEmpty else {
            throw KVerifyError(.usageOrInput, "kverify --sim cannot run here:\n  " + problems.joined(separator: "\n  "))
        }
    }

    private func makeAPI(kubeconfig override: String?) throws -> any KubeAPI {
        // The run namespace is kverify's own, so the context's namespace plays no part.
        try ClusterOptions.makeAPI(kubeconfig: override ?? kubeconfig, context: context, namespace: nil, backend: backend)
    }

    /// The pattern's manifests: `helm template` of `--chart`, else the `-f` files, else the bundled manifests.
    func loadManifests(_ pattern: Pattern) async throws -> [Manifest] {
        if let chart { return try await renderChart(chart, pattern: pattern) }
        if !filenames.isEmpty { return try UserManifests.load(filenames, timeout: timeout) }
        let directory = try manifestsDirectory(pattern)
        do {
            return try pattern.manifestFiles.flatMap { try ManifestLoader.load(file: "\(directory)/\($0)") }
        } catch let error as KubeError {
            throw KVerifyError(.usageOrInput, error.message)
        }
    }

    private func manifestsDirectory(_ pattern: Pattern) throws -> String {
        if let manifests { return manifests }
        var candidates = [FileManager.default.currentDirectoryPath + "/manifests"]
        // The checkout the binary was built in: <repo>/.build/<config>/kverify.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(url.appendingPathComponent("manifests").path)
            url.deleteLastPathComponent()
        }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: "\($0)/\(pattern.manifestFile)") }) else {
            throw KVerifyError(.usageOrInput, "no \(pattern.manifestFile) in ./manifests or beside the kverify checkout; pass --manifests DIR")
        }
        return found
    }

    private func renderChart(_ chart: String, pattern: Pattern) async throws -> [Manifest] {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        guard let helm = path.split(separator: ":").map({ "\($0)/helm" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw KVerifyError(.usageOrInput, "--chart \(chart) needs the helm binary on PATH (not found); install helm 3 "
                               + "(https://helm.sh/docs/intro/install/; in a kverify checkout, scripts/bootstrap.sh puts helm 3.17 in .tools/bin: "
                               + "export PATH=\"$PWD/.tools/bin:$PATH\"), or drop --chart to apply manifests/")
        }
        let result: ProcessRunner.Result
        do {
            // The chart's own switches (charts/kverify-demo: mode, nodes); images, TTL and replicas are kverify's rewrite.
            // Then the user's own values and sets, which helm applies after (and so over) these. `helm test` pods are
            // left out, as `helm install` leaves them out.
            let arguments = ["template", "kverify", chart, "--skip-tests", "--set", "mode=\(pattern.rawValue)", "--set", "nodes=\(nodes)"]
                + chartValues.flatMap { ["--values", $0] } + chartSets.flatMap { ["--set", $0] }
            result = try await ProcessRunner.run(helm, arguments: arguments, environment: ProcessInfo.processInfo.environment,
                                                 timeout: .seconds(60))
        } catch {
            throw KVerifyError(.usageOrInput, "helm template \(chart) could not run: \(error)")
        }
        guard result.succeeded else {
            throw KVerifyError(.usageOrInput, "helm template \(chart) failed (exit \(result.exitCode)): \(result.stderrExcerpt())")
        }
        do {
            return try ManifestLoader.load(yaml: String(decoding: result.stdout, as: UTF8.self), file: "helm template \(chart)")
        } catch let error as KubeError {
            throw KVerifyError(.usageOrInput, error.message)
        }
    }
}

/// Progress while a run goes on: one plain line per phase (and per rollout change) when stdout is not a
/// terminal; on a terminal, a per-node table redrawn in place during the rollout wait.
final class Progress: Sendable {
    let enabled: Bool
    private let live: Bool
    private let state = Mutex<(tableLines: Int, lastLine: String, lastTable: [String])>((0, "", []))

    init(enabled: Bool, live: Bool) {
        self.enabled = enabled
        self.live = live
    }

    /// One row per node: its readiness and each of its pods with its state.
    static func nodeRows(pods: [Pod], nodes: [Node]) -> [String] {
        // Pods grouped by node once: filtering all pods for each node cost nodes × pods per watch event.
        let podsByNode = Dictionary(grouping: pods, by: { $0.spec?.nodeName ?? "" })
        return nodes.map { node in
            let name = node.metadata.name ?? "?"
            let here = podsByNode[name] ?? []
            let podText = here.isEmpty ? "-" : here.map { pod in
                let waiting = ((pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])).compactMap { $0.state?.waiting?.reason }.first
                return "\(pod.metadata.name ?? "?") \(pod.isReady ? "Ready" : (waiting ?? pod.status?.phase?.rawValue ?? "Pending"))"
            }.joined(separator: ", ")
            return "  \(name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(node.isReady ? "Ready   " : "NotReady") \(podText)"
        }
    }

    /// Replaces the table drawn last with `lines`, when they differ.
    private func redraw(_ lines: [String]) {
        state.withLock { current in
            // Watch events often change nothing the table shows: redraw only on a visible change.
            guard current.tableLines == 0 || current.lastTable != lines else { return }
            current.lastTable = lines
            var text = current.tableLines > 0 ? "\u{1B}[\(current.tableLines)A\u{1B}[J" : ""
            // Pod names and waiting reasons come from the cluster: redacted like every report line.
            text += Redaction.redact(lines.joined(separator: "\n")) + "\n"
            FileHandle.standardOutput.write(Data(text.utf8))
            current.tableLines = lines.count
        }
    }

    func show(_ event: PatternRun.Event) {
        guard enabled else { return }
        switch event {
        case .phaseStarted(let name):
            write("▸ \(name)")
        case .phaseFinished(let name, let seconds, let findings):
            let failed = findings.filter { $0.status == .fail }.count
            write("  \(name) done in \(String(format: "%.1f", seconds))s" + (failed > 0 ? ", \(failed) failed" : ""))
            // The per-node verdict, the run's main result, also when every node passed.
            for finding in findings where finding.checkID == "node.metrics" {
                write("  \(finding.subject): \(finding.status == .pass ? "PASS" : finding.status == .warn ? "WARN" : "FAIL") \(finding.observed ?? "")")
            }
        case .rollout(let pods, let nodes, let rolloutState):
            let summary: String = switch rolloutState {
            case .ready: "  rollout: ready"
            case .failed(let problems): "  rollout: failed (\(problems.map(\.reason).joined(separator: ", ")))"
            case .progressing(let missing): "  rollout: waiting for \(missing.first ?? "?")" + (missing.count > 1 ? " (+\(missing.count - 1))" : "")
            }
            if live {
                redraw(Self.nodeRows(pods: pods, nodes: nodes) + [summary])
            } else {
                // Plain lines only when something changed, so a log stays readable.
                let line = summary.trimmingCharacters(in: .whitespaces)
                let changed = state.withLock { current -> Bool in
                    defer { current.lastLine = line }
                    return current.lastLine != line
                }
                if changed { write("  " + line) }
            }
        }
    }

    private func write(_ line: String) {
        state.withLock { $0.tableLines = 0 }
        FileHandle.standardOutput.write(Data((Redaction.redact(line) + "\n").utf8))
    }
}

extension RedisAccessRoute: ExpressibleByArgument {}
