import Findings
import KubeClient
import KubeModel

/// Containers that restarted after the rollout was judged Ready. A liveness kill or a crash in the middle of the
/// run shows up in later phases only as refused connections or missing series; this check names the cause: the
/// container, how its last instance ended, and the pod's events (`Unhealthy`, `Killing`, `BackOff`).
public struct PodStability: Sendable {
    public static let check = "pods.stable"

    public var namespace: String

    public init(namespace: String) {
        self.namespace = namespace
    }

    /// One restarted container: its restart count at readiness and now.
    public struct Restart: Sendable, Hashable {
        public var pod: String
        public var node: String?
        public var container: String
        public var before: Int
        public var after: Int
        public var lastTermination: String?
    }

    /// Pure: the containers whose restart count grew between the two snapshots (matched by pod uid, so a pod
    /// replaced under the same name is not compared with its predecessor), and the pods that are gone.
    public static func restarts(before: [Pod], after: [Pod]) -> (restarted: [Restart], gone: [Pod]) {
        var restarted: [Restart] = []
        var gone: [Pod] = []
        for old in before {
            guard let new = after.first(where: { $0.name == old.name && $0.metadata.uid == old.metadata.uid }) else {
                gone.append(old)
                continue
            }
            let oldCounts = Dictionary(allStatuses(old).map { ($0.name, $0.restartCount) }, uniquingKeysWith: max)
            for status in allStatuses(new) {
                let was = oldCounts[status.name] ?? 0
                guard status.restartCount > was else { continue }
                restarted.append(Restart(pod: new.name, node: new.nodeName, container: status.name, before: was, after: status.restartCount,
                                         lastTermination: RolloutRules.describe(status.lastState?.terminated)))
            }
        }
        return (restarted, gone)
    }

    /// Re-reads the pods that were Ready at the end of the wait and reports every container restart since, with
    /// the pod's events; one passing finding when none restarted.
    public func run(readyPods: [Pod], api: any KubeAPI) async -> [Finding] {
        let current: [Pod]
        do {
            current = try await api.list(Pod.self, namespace: namespace)
        } catch {
            return [.warn(Self.check, subject: "namespace/\(namespace)", expected: "the pods' current status",
                          observed: "could not list pods: \(error)")]
        }
        let (restarted, gone) = Self.restarts(before: readyPods, after: current)
        var findings: [Finding] = []
        for restart in restarted {
            var detail: [String] = []
            if let last = restart.lastTermination { detail.append("last termination: \(last)") }
            if let pod = current.first(where: { $0.name == restart.pod }), let uid = pod.metadata.uid,
               let events = try? await api.events(forUID: uid, namespace: namespace) {
                let relevant = events.filter { ($0.type ?? "") == "Warning" || ($0.reason ?? "") == "Killing" }
                    .sorted { Diagnosis.order($0) < Diagnosis.order($1) }.map(Diagnosis.describe)
                if !relevant.isEmpty { detail.append("events: " + relevant.joined(separator: " | ")) }
            }
            detail.append("next: a container restarted during verification fails the requests and scrapes that reach it; "
                + "check its liveness probe (timeoutSeconds, failureThreshold) and resources against the node's load")
            findings.append(Finding.fail(Self.check, subject: "container/\(restart.container)", expected: "no restart after the pod was Ready",
                                         observed: "restartCount \(restart.before) → \(restart.after)", detail: detail.joined(separator: "; "))
                .scoped(toPod: restart.pod, node: restart.node ?? "?"))
        }
        for pod in gone {
            findings.append(Finding.fail(Self.check, expected: "the pod still running",
                                         observed: "gone or replaced after it was Ready",
                                         detail: "next: kubectl get events -n \(namespace); something deleted or evicted the pod mid-run")
                .scoped(toPod: pod.name, node: pod.nodeName ?? "?"))
        }
        if findings.isEmpty {
            findings.append(.pass(Self.check, subject: "namespace/\(namespace)", expected: "no container restart after the pods were Ready",
                                  observed: "\(readyPods.count) pods, no restarts"))
        }
        return findings
    }

    private static func allStatuses(_ pod: Pod) -> [Pod.ContainerStatus] {
        (pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])
    }
}
