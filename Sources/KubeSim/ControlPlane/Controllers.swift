import Foundation
import SimStore
import KubeModel

/// The control loops of the sim, run on every change of DaemonSets, pods or nodes (level-triggered, like the real
/// controllers: each pass compares the whole desired state with the store and converges).
///
/// - DaemonSet controller: one pod per eligible node (nodeSelector, taints vs tolerations, so the control plane's
///   `NoSchedule` taint keeps pods off it unless tolerated), pods bound directly by `spec.nodeName`, RollingUpdate
///   one `maxUnavailable` batch at a time, and the status fields `kubectl rollout status` and kstatus read.
/// - The scheduler and the Deployment/ReplicaSet controllers (`WorkloadControllers`) run in the same pass, and
///   then `afterEachPass` (the facade hands in kube-proxy/DNS, which lives with the node).
/// - `InstantKubelet` (opt-in, for API-only tests): declares bound pods Running and Ready without starting anything,
///   instead of the real `Kubelet`.
package enum Controllers {
    static let daemonSets = ResourceCatalog.find(group: "apps", version: "v1", plural: "daemonsets")!
    static let pods = ResourceCatalog.all[2]
    static let nodes = ResourceCatalog.all[1]
    static let manager = "kverify-sim-controller"

    /// Starts the loops; cancel the task (or close the store's watches) to stop them. Every change of a watched
    /// resource triggers one pass (coalesced: a burst of changes makes one or two passes, not one each).
    package static func start(store: ObjectStore, instantKubelet: Bool, events: EventRecorder, clusterCA: String? = nil,
                      afterEachPass: (@Sendable () async -> Void)? = nil) -> Task<Void, Never> {
        let watched = [daemonSets, pods, nodes, WorkloadControllers.deployments, WorkloadControllers.replicaSets, ResourceCatalog.all[3],
                       ResourceCatalog.all[0], ResourceCatalog.serviceAccounts, VolumeBinding.claims]
        // Registered before returning, so the sim's watches are all in place once `start` is done.
        let subscriptions = watched.map { store.watchFromCurrentState($0) }
        return Task(executorPreference: SimExecutor.shared) {
            let (trigger, pulse) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            await withTaskGroup(of: Void.self) { group in
                for subscription in subscriptions {
                    group.addTask {
                        for await _ in subscription.events { pulse.yield(()) }
                        subscription.cancel()
                        pulse.finish()
                    }
                }
                group.addTask {
                    for await _ in trigger {
                        if Task.isCancelled { break }
                        ServiceAccountController.reconcile(store: store, clusterCA: clusterCA)
                        Scheduler.run(store, events: events)
                        VolumeBinding.reclaim(store: store)
                        if instantKubelet { runKubelet(store) }
                        for daemonSet in store.list(daemonSets, namespace: nil).items { reconcile(daemonSet, store: store, events: events) }
                        for deployment in store.list(WorkloadControllers.deployments, namespace: nil).items {
                            WorkloadControllers.reconcileDeployment(deployment, store: store, events: events)
                        }
                        for set in store.list(WorkloadControllers.replicaSets, namespace: nil).items {
                            WorkloadControllers.reconcileReplicaSet(set, store: store, events: events)
                        }
                        await afterEachPass?()
                    }
                }
                group.addTask {
                    // Deployments stall by the clock, not by events: a slow tick notices ProgressDeadlineExceeded.
                    while (try? await Task.sleep(for: .seconds(5))) != nil { pulse.yield(()) }
                }
                await withTaskCancellationHandler {
                    await group.waitForAll()
                } onCancel: {
                    for subscription in subscriptions { subscription.cancel() }
                    pulse.finish()
                }
            }
        }
    }

    // MARK: DaemonSet

    static func tolerates(_ tolerations: [JSONValue], _ taint: JSONValue) -> Bool {
        let effect = taint["effect"]?.stringValue
        guard effect == "NoSchedule" || effect == "NoExecute" else { return true }
        return tolerations.contains { toleration in
            let key = toleration["key"]?.stringValue ?? ""
            let effectMatches = (toleration["effect"]?.stringValue ?? "").isEmpty || toleration["effect"]?.stringValue == effect
            guard effectMatches else { return false }
            if toleration["operator"]?.stringValue == "Exists" { return key.isEmpty || key == taint["key"]?.stringValue }
            return key == taint["key"]?.stringValue && (toleration["value"]?.stringValue ?? "") == (taint["value"]?.stringValue ?? "")
        }
    }

    static func eligible(_ node: JSONValue, for template: JSONValue) -> Bool {
        let selector = (template.value(at: ["spec", "nodeSelector"])?.objectValue ?? [:]).compactMapValues(\.stringValue)
        let labels = ObjectStore.labels(of: node)
        guard selector.allSatisfy({ labels[$0.key] == $0.value }) else { return false }
        let tolerations = template.value(at: ["spec", "tolerations"])?.arrayValue ?? []
        return (node.value(at: ["spec", "taints"])?.arrayValue ?? []).allSatisfy { tolerates(tolerations, $0) }
    }

    static func isReady(_ pod: JSONValue) -> Bool {
        (pod.value(at: ["status", "conditions"])?.arrayValue ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
    }

    static func reconcile(_ daemonSet: JSONValue, store: ObjectStore, events: EventRecorder? = nil) {
        guard let name = daemonSet.string(at: "metadata", "name"), let namespace = daemonSet.string(at: "metadata", "namespace"),
              let uid = daemonSet.string(at: "metadata", "uid"), daemonSet.string(at: "metadata", "deletionTimestamp") == nil,
              let template = daemonSet.value(at: ["spec", "template"]) else { return }
        let generation = daemonSet.value(at: ["metadata", "generation"])?.intValue ?? 1
        let nodes = store.list(Self.nodes, namespace: nil).items.filter { eligible($0, for: template) }
        let eligibleNames = Set(nodes.compactMap { $0.string(at: "metadata", "name") })
        let owned = store.list(pods, namespace: namespace).items.filter { pod in
            (pod.value(at: ["metadata", "ownerReferences"])?.arrayValue ?? []).contains { $0["uid"]?.stringValue == uid }
        }
        func isCurrent(_ pod: JSONValue) -> Bool {
            pod.value(at: ["metadata", "labels", "pod-template-generation"])?.stringValue == String(generation)
        }
        // Pods on nodes that are gone or no longer eligible go away.
        for pod in owned where !eligibleNames.contains(pod.string(at: "spec", "nodeName") ?? "") {
            _ = try? store.delete(pods, namespace: namespace, name: pod.string(at: "metadata", "name") ?? "")  // gone already: fine
        }
        let live = owned.filter { eligibleNames.contains($0.string(at: "spec", "nodeName") ?? "") }
        // RollingUpdate: replace outdated pods while no more than maxUnavailable are unavailable.
        let maxUnavailable = daemonSet.value(at: ["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"])?.intValue ?? 1
        if daemonSet.string(at: "spec", "updateStrategy", "type") == "RollingUpdate" {
            var unavailable = nodes.count - live.filter(isReady).count
            for pod in live where !isCurrent(pod) && isReady(pod) && unavailable < maxUnavailable {
                _ = try? store.delete(pods, namespace: namespace, name: pod.string(at: "metadata", "name") ?? "")  // gone already: fine
                unavailable += 1
            }
            for pod in live where !isCurrent(pod) && !isReady(pod) {
                _ = try? store.delete(pods, namespace: namespace, name: pod.string(at: "metadata", "name") ?? "")  // gone already: fine
            }
        }
        let remaining = store.list(pods, namespace: namespace).items.filter { pod in
            (pod.value(at: ["metadata", "ownerReferences"])?.arrayValue ?? []).contains { $0["uid"]?.stringValue == uid }
        }
        let occupied = Set(remaining.compactMap { $0.string(at: "spec", "nodeName") })
        for node in nodes {
            guard let nodeName = node.string(at: "metadata", "name"), !occupied.contains(nodeName) else { continue }
            var pod: JSONValue = ["apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"] ?? [:], "spec": template["spec"] ?? [:]]
            pod.set(["metadata", "generateName"], to: .string("\(name)-"))
            pod.set(["metadata", "name"], to: nil)
            pod.set(["metadata", "labels", "pod-template-generation"], to: .string(String(generation)))
            pod.set(["metadata", "labels", "controller-revision-hash"], to: .string(String(generation)))
            pod.set(["metadata", "ownerReferences"], to: [["apiVersion": "apps/v1", "kind": "DaemonSet", "name": .string(name),
                                                            "uid": .string(uid), "controller": true, "blockOwnerDeletion": true]])
            pod.set(["spec", "nodeName"], to: .string(nodeName))
            // The real DaemonSet controller leaves binding to the default scheduler (node affinity to this node), so a
            // DaemonSet pod has the same Scheduled event as any other; binding here directly must not lose it.
            do {
                let created = try store.create(pods, namespace: namespace, body: pod, manager: manager)
                let podName = created.string(at: "metadata", "name") ?? ""
                events?.record(created, reason: "Scheduled", message: "Successfully assigned \(namespace)/\(podName) to \(nodeName)",
                               component: "default-scheduler")
            } catch {
                // As the real controller: the failure is a Warning event on the DaemonSet, retried on the next pass.
                events?.record(daemonSet, type: "Warning", reason: "FailedCreate", message: "Error creating: \(error)",
                               component: "daemonset-controller")
            }
        }
        let final = store.list(pods, namespace: namespace).items.filter { pod in
            (pod.value(at: ["metadata", "ownerReferences"])?.arrayValue ?? []).contains { $0["uid"]?.stringValue == uid }
        }
        let scheduled = final.filter { eligibleNames.contains($0.string(at: "spec", "nodeName") ?? "") }
        let ready = scheduled.filter(isReady).count
        let status: JSONValue = [
            "observedGeneration": .number(Double(generation)),
            "desiredNumberScheduled": .number(Double(nodes.count)),
            "currentNumberScheduled": .number(Double(scheduled.count)),
            "updatedNumberScheduled": .number(Double(scheduled.filter(isCurrent).count)),
            "numberReady": .number(Double(ready)),
            "numberAvailable": .number(Double(ready)),
            "numberUnavailable": .number(Double(max(0, nodes.count - ready))),
            "numberMisscheduled": .number(Double(final.count - scheduled.count)),
        ]
        store.modify(daemonSets, namespace: namespace, name: name, manager: manager) { current in
            var changed = current
            changed.set(["status"], to: Patching.mergePatch(current["status"] ?? [:], status))
            return changed
        }
    }

    // MARK: Placeholder kubelet

    static func runKubelet(_ store: ObjectStore) {
        let nodeAddresses = Dictionary(store.list(nodes, namespace: nil).items.compactMap { node -> (String, String)? in
            guard let name = node.string(at: "metadata", "name"),
                  let address = node.value(at: ["status", "addresses"])?.arrayValue?.first(where: { $0["type"] == "InternalIP" })?["address"]?.stringValue
            else { return nil }
            return (name, address)
        }, uniquingKeysWith: { first, _ in first })
        for pod in store.list(pods, namespace: nil).items where pod.string(at: "status", "phase") == "Pending" {
            guard let node = pod.string(at: "spec", "nodeName"), let address = nodeAddresses[node],
                  let name = pod.string(at: "metadata", "name") else { continue }
            let now = ObjectStore.now()
            let containers = (pod.value(at: ["spec", "containers"])?.arrayValue ?? []).map { container -> JSONValue in
                ["name": container["name"] ?? "", "image": container["image"] ?? "", "imageID": "", "ready": true, "started": true,
                 "restartCount": 0, "state": ["running": ["startedAt": .string(now)]]]
            }
            let conditions: JSONValue = .array(["PodScheduled", "Initialized", "ContainersReady", "Ready"].map {
                ["type": .string($0), "status": "True", "lastTransitionTime": .string(now)]
            })
            store.modify(pods, namespace: pod.string(at: "metadata", "namespace"), name: name, manager: "kubelet") { current in
                var changed = current
                changed.set(["status", "phase"], to: "Running")
                changed.set(["status", "hostIP"], to: .string(address))
                changed.set(["status", "podIP"], to: .string(address))
                changed.set(["status", "startTime"], to: .string(now))
                changed.set(["status", "conditions"], to: conditions)
                changed.set(["status", "containerStatuses"], to: .array(containers))
                return changed
            }
        }
    }
}
