import Foundation
import KubeClient
import KubeModel
import Synchronization

/// Waits for a run's rollout, driven by watches (pods and workloads in the run namespace, nodes cluster-wide):
/// each watch task decodes every event once, into the typed model, and keeps it in a per-object cache; every change
/// re-evaluates `RolloutRules` on the cached typed snapshot (no decoding there). No polling: the only timers are
/// the deadline and, while a pod is Unschedulable, the end of its grace period.
public struct RolloutWait: Sendable {
    public var rules: RolloutRules
    public var namespace: String
    /// The workloads the run applied, as `Kind/name`; the rollout is not ready until each has been seen.
    public var workloads: Set<String>
    public var timeout: Duration

    public init(rules: RolloutRules, namespace: String, workloads: Set<String>, timeout: Duration) {
        self.rules = rules
        self.namespace = namespace
        self.workloads = workloads
        self.timeout = timeout
    }

    /// The last snapshot the wait saw and what it concluded.
    public struct Outcome: Sendable {
        public enum Result: Sendable, Hashable {
            case ready
            case failed([PodProblem])
            /// The deadline passed; what was still missing.
            case timedOut([String])
        }
        public var result: Result
        public var workloads: [Workload]
        public var pods: [Pod]
        public var nodes: [Node]
        public var elapsed: Duration
    }

    /// A snapshot after each change, for live progress output.
    public typealias Progress = @Sendable (_ pods: [Pod], _ nodes: [Node], _ state: RolloutState) -> Void

    /// One decoded object of a watch.
    private enum Entry: Sendable {
        case pod(Pod)
        case node(Node)
        case workload(Workload)
    }

    /// Typed objects per watch (`pods`, `nodes`, `daemonsets`, `deployments`), keyed by namespace/name.
    private struct Cache: Sendable {
        var objects: [String: [String: Entry]] = [:]
        var synced: Set<String> = []
    }

    /// Shared by the watch tasks and the evaluating loop.
    private final class CacheBox: Sendable {
        let state = Mutex(Cache())
    }

    /// The first watch failure, kept aside from the coalescing signal stream.
    private final class FailureBox: Sendable {
        let error = Mutex<(any Error)?>(nil)
    }

    private enum Signal: Sendable {
        case changed
        case failed(any Error)
    }

    /// - Throws: `KubeError` when a watch cannot be (re)established; `CancellationError` when cancelled.
    public func run(_ api: any KubeAPI, progress: Progress? = nil) async throws -> Outcome {
        let start = ContinuousClock.now
        let deadline = start + timeout
        let cache = CacheBox()
        // Changes coalesce: while an evaluation runs, further changes make one more evaluation of the newest state,
        // not one each. Failures are kept aside so coalescing can never drop one.
        let (signals, signal) = AsyncStream<Signal>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let failure = FailureBox()
        let sources: [(String, Resource, String?)] = [
            ("pods", .pods, namespace), ("nodes", .nodes, nil),
            ("daemonsets", .daemonSets, namespace), ("deployments", .deployments, namespace),
        ]
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for (key, resource, namespace) in sources {
                group.addTask {
                    do {
                        for try await update in api.retryingWatch(resource, namespace: namespace) {
                            // Decoded here, once per event and outside the lock; an object that does not decode is a
                            // server answer kverify cannot judge: the wait fails naming it, rather than judging
                            // readiness without it.
                            let change = try Self.decode(update, key: key)
                            cache.state.withLock { Self.apply(change, to: &$0, key: key) }
                            signal.yield(.changed)
                        }
                    } catch is CancellationError {
                    } catch {
                        failure.error.withLock { $0 = $0 ?? error }
                        signal.yield(.changed)
                    }
                }
            }
            group.addTask {
                // The deadline: one wake-up, not a poll.
                try? await Task.sleep(until: deadline)
                signal.yield(.changed)
            }
            defer { group.cancelAll() }
            var unschedulableSince: [String: ContinuousClock.Instant] = [:]
            var wakeups: Set<String> = []
            var last = (workloads: [Workload](), pods: [Pod](), nodes: [Node](), state: RolloutState.progressing(["no watch has answered yet"]))
            for await event in signals {
                if case .failed(let error) = event { throw error }
                if let error = failure.error.withLock({ $0 }) { throw error }
                try Task.checkCancellation()
                let now = ContinuousClock.now
                let snapshot = cache.state.withLock { $0 }
                guard snapshot.synced.count == sources.count else {
                    if now >= deadline { return outcome(.timedOut(["the watches did not list within \(timeout)"]), last, start) }
                    continue
                }
                var pods: [Pod] = [], nodes: [Node] = [], workloads: [Workload] = []
                for entry in snapshot.objects.values.lazy.flatMap(\.values) {
                    switch entry {
                    case .pod(let pod): pods.append(pod)
                    case .node(let node): nodes.append(node)
                    case .workload(let workload): workloads.append(workload)
                    }
                }
                // Grace periods run from when kverify first saw a pod Unschedulable.
                var unschedulableFor: [String: Duration] = [:]
                for pod in pods {
                    let condition = pod.status?.conditions["PodScheduled"]
                    if condition?.status == .false, condition?.reason == "Unschedulable" {
                        let since = unschedulableSince[pod.name] ?? now
                        unschedulableSince[pod.name] = since
                        unschedulableFor[pod.name] = now - since
                        if wakeups.insert(pod.name).inserted {
                            let wake = since + rules.unschedulableGrace
                            group.addTask {
                                try? await Task.sleep(until: wake)
                                signal.yield(.changed)
                            }
                        }
                    } else {
                        unschedulableSince[pod.name] = nil
                    }
                }
                var state = rules.evaluate(workloads: workloads, pods: pods, nodes: nodes, unschedulableFor: unschedulableFor)
                let seen = Set(workloads.map(\.reference))
                let absent = workloads.isEmpty ? Array(self.workloads) : self.workloads.subtracting(seen).sorted()
                if !absent.isEmpty, case .ready = state { state = .progressing(absent.map { "\($0) not created yet" }) }
                // Sorted only for whoever reads them: sorting every snapshot of a 200-node rollout took a tenth of
                // kverify's CPU in the wait (perf).
                last = (workloads, pods, nodes, state)
                if let progress { progress(Self.byName(pods), Self.byName(nodes), state) }
                switch state {
                case .ready: return outcome(.ready, last, start)
                case .failed(let problems): return outcome(.failed(problems), last, start)
                case .progressing(let missing):
                    if now >= deadline { return outcome(.timedOut(missing), last, start) }
                }
            }
            throw CancellationError()
        }
    }

    private func outcome(_ result: Outcome.Result, _ last: (workloads: [Workload], pods: [Pod], nodes: [Node], state: RolloutState),
                         _ start: ContinuousClock.Instant) -> Outcome {
        Outcome(result: result, workloads: last.workloads, pods: Self.byName(last.pods), nodes: Self.byName(last.nodes),
                elapsed: ContinuousClock.now - start)
    }

    private static func byName(_ pods: [Pod]) -> [Pod] { pods.sorted { $0.name < $1.name } }
    private static func byName(_ nodes: [Node]) -> [Node] { nodes.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") } }

    /// An update with its objects decoded: what to store under which key, or remove.
    private enum Change {
        case replaceAll([(String, Entry)])
        case put(String, Entry)
        case remove(String)
        case nothing
    }

    private static func decode(_ update: WatchUpdate, key: String) throws -> Change {
        func entry(_ data: Data) throws -> (String, Entry) {
            func named(_ metadata: ObjectMeta, _ entry: Entry) -> (String, Entry) {
                ("\(metadata.namespace ?? "")/\(metadata.name ?? "")", entry)
            }
            switch key {
            case "pods":
                let pod = try decodeObject(Pod.self, data, what: "a watched pod")
                return named(pod.metadata, .pod(pod))
            case "nodes":
                let node = try decodeObject(Node.self, data, what: "a watched node")
                return named(node.metadata, .node(node))
            case "daemonsets":
                let daemonSet = try decodeObject(DaemonSet.self, data, what: "a watched DaemonSet")
                return named(daemonSet.metadata, .workload(Workload(daemonSet)))
            default:
                let deployment = try decodeObject(Deployment.self, data, what: "a watched Deployment")
                return named(deployment.metadata, .workload(Workload(deployment)))
            }
        }
        switch update.type {
        case .synced: return .replaceAll(try update.snapshot.map(entry))
        case .added, .modified:
            guard let object = update.object else { return .nothing }
            let (name, decoded) = try entry(object)
            return .put(name, decoded)
        case .deleted:
            guard let object = update.object else { return .nothing }
            return .remove(try entry(object).0)
        }
    }

    private static func apply(_ change: Change, to cache: inout Cache, key: String) {
        switch change {
        case .replaceAll(let entries):
            // A (re)list replaces everything this watch knew.
            cache.objects[key] = Dictionary(entries, uniquingKeysWith: { _, newer in newer })
            cache.synced.insert(key)
        case .put(let name, let entry): cache.objects[key, default: [:]][name] = entry
        case .remove(let name): cache.objects[key, default: [:]][name] = nil
        case .nothing: break
        }
    }
}
