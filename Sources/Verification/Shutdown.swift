import Findings
import Foundation
import KubeClient
import KubeModel
import Processes
import PromText

/// Graceful shutdown as Kubernetes does it, on one app pod (the end of the lifecycle phase): the pod is deleted with
/// its own `terminationGracePeriodSeconds`, and its end is watched —
///
/// - `lifecycle.shutdown.terminating`: the API server marked it Terminating (`deletionTimestamp`) before it went;
/// - `lifecycle.shutdown.exit`, per container: how it ended, from the last status the kubelet wrote, and how long
///   after the delete (SIGTERM follows it at once) that terminated state was seen. Exit 0, or 143 (ended by the
///   SIGTERM itself, a process without a handler), is a clean stop; 137 means it was killed at the end of its grace
///   period (it ignored SIGTERM or took too long) — a failure with its last log lines; another code is a failure
///   too. No terminated state seen before the pod went (a kubelet may skip the last status write) is a warning;
/// - `lifecycle.shutdown.replacement`: the controller's new pod (DaemonSet: on the same node; otherwise anywhere)
///   becomes Ready, answers a request and serves `/metrics`; it joins the pods the Redis phases audit;
/// - `lifecycle.shutdown.keys` (read in the redis phase, `keysFinding`): the deleted pod's keys are not refreshed.
///
/// Timings are measured, not judged: delete → each container's exit seen, delete → gone, gone → replacement Ready.
public struct Shutdown: Sendable {
    public static let terminatingCheck = "lifecycle.shutdown.terminating"
    public static let exitCheck = "lifecycle.shutdown.exit"
    public static let replacementCheck = "lifecycle.shutdown.replacement"
    /// Checked in the redis phase (`keysFinding`): the deleted pod's keys are no longer refreshed.
    public static let keysCheck = "lifecycle.shutdown.keys"

    /// What the check did: its findings, the controller's replacement, and when the deleted pod was gone.
    public struct Outcome: Sendable {
        public var findings: [Finding]
        public var replacement: PodTarget?
        public var deleted: (target: PodTarget, goneAt: ContinuousClock.Instant)?
    }

    public var api: any KubeAPI
    public var namespace: String
    /// Bounds the wait for the pod to go (on top of its grace period) and for its replacement to be Ready.
    public var timeout: Duration

    public init(api: any KubeAPI, namespace: String, timeout: Duration = .seconds(120)) {
        self.api = api
        self.namespace = namespace
        self.timeout = timeout
    }

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// Deletes `target`'s pod and checks its end and its replacement. `replacementTarget` finds the new pod's
    /// endpoints (as `PatternRun.targets` does); the replacement is returned for the later phases.
    public func run(_ target: PodTarget, selector: String, replacementTarget: @Sendable (String) async throws -> PodTarget?) async -> Outcome {
        var findings: [Finding] = []
        let start = ContinuousClock.now
        let ended: Ending
        do {
            ended = try await deleteAndFollow(target, selector: selector)
        } catch {
            return Outcome(findings: [target.scope(.fail(Self.terminatingCheck, subject: "pod/\(target.pod)", expected: "the pod deleted and gone",
                                                         observed: "\(error)"))])
        }
        let goneAt = ContinuousClock.now
        let gone = goneAt - start
        findings.append(target.scope(ended.terminating
            ? .pass(Self.terminatingCheck, subject: "pod/\(target.pod)", expected: "Terminating (deletionTimestamp) before it goes",
                    observed: "Terminating with a \(ended.grace) s grace period; gone \(Lifecycle.seconds(gone)) after the delete")
            : .warn(Self.terminatingCheck, subject: "pod/\(target.pod)", expected: "Terminating (deletionTimestamp) before it goes",
                    observed: "went without a Terminating state (gone \(Lifecycle.seconds(gone)) after the delete)",
                    detail: "the API server removed it at once: no grace period, so no graceful shutdown to observe")))
        for container in ended.containers {
            findings.append(target.scope(exitFinding(container, grace: ended.grace, logs: ended.logs[container.name])))
        }

        // The replacement, as the controller makes it.
        let replacementStart = ContinuousClock.now
        do {
            let name = try await waitForReplacement(of: target, selector: selector, before: ended.before,
                                                    sameNode: ended.ownerKind == "DaemonSet")
            guard let replacement = try await replacementTarget(name) else { throw Failed(description: "pod \(name) vanished") }
            let lifecycle = Lifecycle(api: api, namespace: namespace)
            await lifecycle.traffic(replacement, requests: 4)
            let exposition = try await lifecycle.scrape(replacement)
            let ready = ContinuousClock.now - replacementStart
            findings.append(replacement.scope(.pass(Self.replacementCheck, subject: "pod/\(replacement.pod)",
                expected: "a replacement pod Ready, answering requests and serving /metrics",
                observed: "replaces \(target.pod); Ready \(Lifecycle.seconds(ready)) after the old pod went; /metrics serves "
                    + "\(exposition.families.count) families")))
            return Outcome(findings: findings, replacement: replacement, deleted: (target, goneAt))
        } catch {
            findings.append(target.scope(.fail(Self.replacementCheck, subject: "pod/\(target.pod)",
                expected: "a replacement pod Ready, answering requests and serving /metrics", observed: "\(error)")))
            return Outcome(findings: findings, deleted: (target, goneAt))
        }
    }

    /// The deleted pod's keys, read once in the redis phase: none may have been written since the pod went, so each
    /// has at most TTL − (time since it went) left (1 s slack), and all are gone a TTL after it went.
    public static func keysFinding(_ deleted: PodTarget, goneAt: ContinuousClock.Instant, ttlSeconds: Int, alive: Int,
                                   longestMilliseconds: Int64?) -> Finding {
        let since = ContinuousClock.now - goneAt
        let expected = "no key under its prefix written since the pod went: each expires within TTL \(ttlSeconds) s of it"
        let subject = "\(deleted.keyPrefix ?? "?"):*"
        guard alive > 0 else {
            return deleted.scope(.pass(keysCheck, subject: subject, expected: expected,
                                       observed: "every key gone \(Lifecycle.seconds(since)) after the pod went"))
        }
        guard let longest = longestMilliseconds else {
            return deleted.scope(.warn(keysCheck, subject: subject, expected: expected,
                                       observed: "\(alive) key\(alive == 1 ? "" : "s") left without a TTL \(Lifecycle.seconds(since)) after the pod went",
                                       detail: "keys without a TTL never expire (redis.ttl.missing says whose they are)"))
        }
        let allowed = Double(ttlSeconds) - since.seconds + 1
        let remaining = Double(longest) / 1000
        let observed = "\(alive) key\(alive == 1 ? "" : "s") left \(Lifecycle.seconds(since)) after the pod went, the longest with "
            + String(format: "%.1f s", remaining) + " to live"
        return remaining <= allowed
            ? deleted.scope(.pass(keysCheck, subject: subject, expected: expected, observed: observed + ": none refreshed since"))
            : deleted.scope(.fail(keysCheck, subject: subject, expected: expected, observed: observed + String(format: ", more than the %.1f s a key written before it went could have", allowed),
                                  detail: "something still writes under the deleted pod's prefix: its processes outlived it, or another pod uses the same prefix"))
    }

    /// How the deleted pod ended.
    struct Ending {
        var terminating = false
        var grace = 30
        /// The pod's controller kind (`DaemonSet` recreates on the same node).
        var ownerKind: String?
        /// The app pods that existed before the delete: none of them is the replacement.
        var before: Set<String> = []
        var containers: [ContainerEnd] = []
        var logs: [String: String] = [:]
    }

    struct ContainerEnd {
        var name: String
        var exitCode: Int?
        var reason: String?
        /// From the delete request to the first status showing the container terminated, as the watch saw it: the
        /// kubelet's own `finishedAt` has whole seconds only.
        var exitSeenAfter: Duration?
    }

    func exitFinding(_ container: ContainerEnd, grace: Int, logs: String?) -> Finding {
        let subject = "container/\(container.name)"
        let expected = "exits on SIGTERM within its \(grace) s grace period (exit 0, or 143 for the SIGTERM itself)"
        let after = container.exitSeenAfter.map { ", \(Lifecycle.seconds($0)) after the delete" } ?? ""
        guard let code = container.exitCode else {
            return .warn(Self.exitCheck, subject: subject, expected: expected, observed: "no terminated state seen before the pod went",
                         detail: "the kubelet's last status write may not reach watchers before the pod is removed")
        }
        let tail = logs.map { text in
            "; last log lines: " + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(10).joined(separator: " | ")
        } ?? ""
        switch code {
        case 0, 143:
            return .pass(Self.exitCheck, subject: subject, expected: expected, observed: "exit \(code) (\(container.reason ?? "?"))\(after)")
        case 137:
            return .fail(Self.exitCheck, subject: subject, expected: expected,
                         observed: "killed at the end of its grace period (exit 137, \(container.reason ?? "?"))\(after)",
                         detail: "it ignored SIGTERM or needed longer than terminationGracePeriodSeconds\(tail)")
        default:
            return .fail(Self.exitCheck, subject: subject, expected: expected, observed: "exit \(code) (\(container.reason ?? "?")) on SIGTERM\(after)",
                         detail: "a non-zero exit on SIGTERM is an unclean stop\(tail)")
        }
    }

    /// Deletes the pod and follows it until it is gone: whether it turned Terminating, each container's last state,
    /// and its logs while they could still be read.
    private func deleteAndFollow(_ target: PodTarget, selector: String) async throws -> Ending {
        let pod = try decodeObject(JSONValue.self, try await api.get(.pods, name: target.pod, namespace: namespace), what: "pod \(target.pod)")
        let uid = pod.string(at: "metadata", "uid")
        var ending = Ending()
        ending.grace = pod.value(at: ["spec", "terminationGracePeriodSeconds"])?.intValue ?? 30
        let names = (pod.value(at: ["spec", "containers"])?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        ending.containers = names.map { ContainerEnd(name: $0) }
        ending.ownerKind = pod.value(at: ["metadata", "ownerReferences"])?.arrayValue?.first { $0["controller"] == .bool(true) }?["kind"]?.stringValue
        ending.before = Set(try await api.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: selector)).compactMap(\.metadata.name))
        let api = self.api, namespace = self.namespace, initial = ending
        let timeout = KubeError(.timedOut, "pod \(target.pod) still exists \(timeout) after its \(ending.grace) s grace period")
        return try await withDeadline(.seconds(ending.grace) + self.timeout, onTimeout: { timeout }) {
            var current = initial
            let updates = api.retryingWatch(.pods, namespace: namespace, options: ListOptions(fieldSelector: "metadata.name=\(target.pod)"))
            var deleted = false
            var deletedAt = ContinuousClock.now
            for try await update in updates {
                let objects: [Data]
                switch update.type {
                case .synced:
                    objects = update.snapshot
                    if !deleted {
                        deleted = true
                        deletedAt = ContinuousClock.now
                        try await api.delete(.pods, name: target.pod, namespace: namespace, propagation: .background)
                    }
                    if objects.isEmpty { return current }
                case .added, .modified, .deleted:
                    objects = update.object.map { [$0] } ?? []
                }
                for data in objects {
                    guard let object = try? JSONValue.parse(json: data), object.string(at: "metadata", "uid") == uid else { continue }
                    if object.string(at: "metadata", "deletionTimestamp") != nil {
                        if !current.terminating {
                            // Logs while the containers still run; read again once they ended, if the pod is still there.
                            current.logs = await Self.logs(api, pod: target.pod, namespace: namespace, containers: names)
                        }
                        current.terminating = true
                    }
                    for status in object.value(at: ["status", "containerStatuses"])?.arrayValue ?? [] {
                        guard let name = status["name"]?.stringValue, let index = current.containers.firstIndex(where: { $0.name == name }),
                              let terminated = status.value(at: ["state", "terminated"]) else { continue }
                        if current.containers[index].exitCode == nil {
                            current.containers[index].exitSeenAfter = ContinuousClock.now - deletedAt
                            let later = await Self.logs(api, pod: target.pod, namespace: namespace, containers: [name])
                            current.logs.merge(later) { _, new in new }
                        }
                        current.containers[index].exitCode = terminated["exitCode"]?.intValue
                        current.containers[index].reason = terminated["reason"]?.stringValue
                    }
                }
                // The deleted object carries the last status the kubelet wrote.
                if update.type == .deleted { return current }
            }
            return current
        }
    }

    private static func logs(_ api: any KubeAPI, pod: String, namespace: String, containers: [String]) async -> [String: String] {
        var logs: [String: String] = [:]
        for container in containers {
            if let text = try? await api.logs(pod: pod, namespace: namespace, container: container, tailLines: 20) { logs[container] = text }
        }
        return logs
    }

    /// The controller's new pod for `target`: a pod that did not exist before the delete, not terminating, Ready —
    /// on the same node for a DaemonSet (it recreates its pod there), anywhere for another controller.
    private func waitForReplacement(of target: PodTarget, selector: String, before: Set<String>, sameNode: Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        let place = sameNode ? " on node \(target.node)" : ""
        var seen = "no new pod"
        while ContinuousClock.now < deadline {
            let pods = try await api.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: selector))
                .filter { !before.contains($0.metadata.name ?? "") && $0.metadata.deletionTimestamp == nil && (!sameNode || $0.spec?.nodeName == target.node) }
            let ready = pods.filter(\.isReady)
            if let name = ready.first?.metadata.name { return name }
            seen = pods.isEmpty ? "no new pod\(place)" : "\(pods.count) new pod(s)\(place), none Ready yet"
            try await Task.sleep(for: .milliseconds(250))
        }
        throw Failed(description: "no Ready replacement\(place) within \(timeout): \(seen)")
    }
}
