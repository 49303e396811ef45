// kverify-readiness-bench: how long after the last pod turns Ready does a verdict arrive? For each run it starts a
// DaemonSet pattern run on an in-process sim (stub app pods: no processes, real readiness probes), records the
// instant the sim's store makes the last app pod Ready (watched in process, so no client latency), and the
// instants at which kverify's rollout wait (PatternRun.wait through the REST backend) and a concurrently started
// `kubectl rollout status` reach their verdicts. Prints one JSON line per run and a summary line.
// Used by scripts/bench/readiness.sh; not part of kverify's interface.
import Foundation
import KubeClient
import KubeConfig
import KubeModel
import KubeSim
import SimStore
import Verification

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("kverify-readiness-bench: \(message)\n".utf8))
    exit(2)
}

var nodes = 10, runs = 5
var manifestsDirectory = "manifests"
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
    switch flag {
    case "--nodes": nodes = Int(value) ?? nodes
    case "--runs": runs = Int(value) ?? runs
    case "--manifests": manifestsDirectory = value
    default: fail("unknown flag \(flag) (known: --nodes N --runs N --manifests DIR)")
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// A pod's `Ready` condition is `True` (what `Pod.isReady` says, without decoding the pod).
func isReady(_ pod: JSONValue) -> Bool {
    guard case .array(let conditions)? = pod["status"]?["conditions"] else { return false }
    return conditions.contains { $0["type"] == .string("Ready") && $0["status"] == .string("True") }
}

/// The instant the number of Ready pods (by name) first reached `desired`, fed from the store's own events.
final class ReadyClock: @unchecked Sendable {  // all state under `lock`
    private let lock = NSLock()
    private var ready = Set<String>()
    private var reached: ContinuousClock.Instant?
    let desired: Int

    init(desired: Int) { self.desired = desired }

    func observe(name: String, isReady: Bool, at instant: ContinuousClock.Instant) {
        lock.withLock {
            if isReady { ready.insert(name) } else { ready.remove(name) }
            if ready.count >= desired, reached == nil { reached = instant }
        }
    }

    var lastReady: ContinuousClock.Instant? { lock.withLock { reached } }
}

let clock = ContinuousClock()
var options = SimulatedCluster.Options(nodes: nodes)
options.bookmarkInterval = .seconds(5)
let sim = try await SimulatedCluster.start(options: options)
let configuration = try KubeConfigLoader().load(.init(kubeconfig: sim.kubeconfigPath))
let api = RESTBackend(configuration: configuration)
let manifests = try ["redis.yaml", "daemonset.yaml"].flatMap { try ManifestLoader.load(file: "\(manifestsDirectory)/\($0)") }
let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-readiness-\(UUID().uuidString.prefix(6))")
var kverifyLatencies: [Double] = [], kubectlLatencies: [Double] = []

for run in 1...runs {
    var runOptions = PatternRun.Options(pattern: .daemonset, nodes: nodes, manifests: manifests, appImage: "kverify/stub-exporter:1",
                                        timeout: .seconds(120), observeExpiry: false)
    runOptions.redisTTLSeconds = 30
    let pattern = PatternRun(api: api, options: runOptions)
    let namespace = runOptions.namespace
    // Every pod of the run: one app pod per worker, and Redis.
    let readyClock = ReadyClock(desired: nodes - 1 + 1)
    let subscription = try sim.store.watchChanges(ResourceCatalog.find(group: "", version: "v1", plural: "pods")!, namespace: namespace)
    let observer = Task {
        for await event in subscription.events {
            // Read from the store's JSON directly: this observer shares the process (and its two cores) with the sim
            // and kverify, so it must cost next to nothing (it used to encode and decode every pod event).
            guard case .string(let name)? = event.object["metadata"]?["name"] else { continue }
            readyClock.observe(name: name, isReady: event.type != .deleted && isReady(event.object), at: event.recordedAt)
        }
    }
    // When the DaemonSet's status (what kubectl rollout status reads) first says every pod is available.
    let statusDone = LockedInstant()
    let dsSubscription = try sim.store.watchChanges(ResourceCatalog.find(group: "apps", version: "v1", plural: "daemonsets")!, namespace: namespace)
    let dsObserver = Task {
        for await event in dsSubscription.events {
            let status = event.object["status"]
            if case .number(let desired)? = status?["desiredNumberScheduled"], desired > 0, status?["numberAvailable"] == .number(desired) {
                statusDone.set(event.recordedAt)
            }
        }
    }
    // And when the Redis Deployment's status says its replica is available.
    let deployDone = LockedInstant()
    let deploySubscription = try sim.store.watchChanges(ResourceCatalog.find(group: "apps", version: "v1", plural: "deployments")!, namespace: namespace)
    let deployObserver = Task {
        for await event in deploySubscription.events where event.object["status"]?["availableReplicas"] == .number(1)
            && event.object["status"]?["updatedReplicas"] == .number(1) {
            deployDone.set(event.recordedAt)
        }
    }
    try await pattern.createNamespace()
    let applied = try await pattern.apply()
    let appliedAt = clock.now
    // kubectl's own wait, started at the same moment as kverify's.
    let kubectl = Process()
    kubectl.executableURL = URL(fileURLWithPath: "/usr/bin/kubectl")
    kubectl.arguments = ["--kubeconfig", sim.kubeconfigPath, "rollout", "status", "-n", namespace, "ds/gunicorn-prometheus-exporter-daemonset",
                         "--timeout=120s"]
    kubectl.environment = ProcessInfo.processInfo.environment.merging(["KUBECACHEDIR": cache.path]) { $1 }
    kubectl.standardOutput = FileHandle.nullDevice
    let kubectlDone = LockedInstant()
    kubectl.terminationHandler = { _ in kubectlDone.set(clock.now) }
    try kubectl.run()
    let outcome = try await pattern.wait(applied)
    let kverifyDone = clock.now
    // The observer may still be reading the store's events (it is timed by their record instants, not by when it runs).
    let settle = clock.now + .seconds(5)
    while (kubectlDone.value == nil || readyClock.lastReady == nil || statusDone.value == nil || deployDone.value == nil) && clock.now < settle {
        try await Task.sleep(for: .milliseconds(5))
    }
    subscription.cancel()
    observer.cancel()
    dsSubscription.cancel()
    dsObserver.cancel()
    deploySubscription.cancel()
    deployObserver.cancel()
    guard outcome.result == .ready, let lastReady = readyClock.lastReady, let kubectlInstant = kubectlDone.value,
          let daemonSetComplete = statusDone.value, let redisComplete = deployDone.value else {
        _ = await pattern.cleanup()
        await sim.stop()  // never leave the sim's pods behind
        fail("run \(run): no verdict to time (rollout \(outcome.result == .ready ? "ready" : "not ready"), last Ready seen: \(readyClock.lastReady != nil), kubectl done: \(kubectlDone.value != nil))")
    }
    // kverify's rule holds once every pod is Ready and both workloads' statuses say so; kubectl rollout status
    // needs only the DaemonSet's status. Each is timed from the instant its own condition became true in the store.
    let everythingReady = max(lastReady, daemonSetComplete, redisComplete)
    let kverifyMs = milliseconds(kverifyDone - everythingReady), kubectlMs = milliseconds(kubectlInstant - daemonSetComplete)
    kverifyLatencies.append(kverifyMs)
    kubectlLatencies.append(kubectlMs)
    // The same-run view: both waiters started right after the apply; how long each took from there, and how far
    // kverify's verdict came after kubectl's exit (negative: before).
    let kverifyFromApply = milliseconds(kverifyDone - appliedAt), kubectlFromApply = milliseconds(kubectlInstant - appliedAt)
    print("{\"run\":\(run),\"pods\":\(nodes - 1),\"kverify_ms\":\(String(format: "%.1f", kverifyMs)),\"kubectl_rollout_status_ms\":\(String(format: "%.1f", kubectlMs)),"
          + "\"kverify_from_apply_ms\":\(String(format: "%.1f", kverifyFromApply)),\"kubectl_from_apply_ms\":\(String(format: "%.1f", kubectlFromApply)),"
          + "\"kverify_after_kubectl_ms\":\(String(format: "%.1f", kverifyFromApply - kubectlFromApply))}")
    _ = await pattern.cleanup()
}
print("{\"summary\":true,\"runs\":\(runs),\"pods\":\(nodes - 1),\"kverify_median_ms\":\(String(format: "%.1f", median(kverifyLatencies))),\"kverify_max_ms\":\(String(format: "%.1f", kverifyLatencies.max() ?? 0)),\"kubectl_median_ms\":\(String(format: "%.1f", median(kubectlLatencies))),\"kubectl_max_ms\":\(String(format: "%.1f", kubectlLatencies.max() ?? 0))}")
api.shutdown()
await sim.stop()
try? FileManager.default.removeItem(at: cache)

/// An instant set once from another thread.
final class LockedInstant: @unchecked Sendable {  // `instant` only under `lock`
    private let lock = NSLock()
    private var instant: ContinuousClock.Instant?
    func set(_ value: ContinuousClock.Instant) { lock.withLock { if instant == nil { instant = value } } }
    var value: ContinuousClock.Instant? { lock.withLock { instant } }
}
