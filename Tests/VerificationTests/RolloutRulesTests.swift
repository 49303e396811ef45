import Foundation
import KubeModel
import Testing
@testable import Verification

/// The readiness rules on hand-built snapshots: kstatus counts, one pod per node, fail-fast reasons.
@Suite("Rollout rules")
struct RolloutRulesTests {
    static func node(_ name: String, controlPlane: Bool = false, ready: Bool = true) -> Node {
        var object: JSONValue = ["metadata": ["name": .string(name)],
                                 "status": ["conditions": [["type": "Ready", "status": .string(ready ? "True" : "False"),
                                                            "reason": .string(ready ? "KubeletReady" : "KubeletNotReady")]]]]
        if controlPlane {
            object.set(["spec", "taints"], to: [["key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"]])
        }
        return try! object.decode(as: Node.self)
    }

    static func pod(_ name: String, node: String?, ready: Bool = true, waiting: String? = nil, labels: JSONValue = ["app": "x"],
                    unschedulable: Bool = false) -> Pod {
        var object: JSONValue = ["metadata": ["name": .string(name), "labels": labels, "uid": .string("uid-\(name)")],
                                 "spec": ["containers": [["name": "app"], ["name": "exporter"]]]]
        if let node { object.set(["spec", "nodeName"], to: .string(node)) }
        var conditions: [JSONValue] = [["type": "Ready", "status": .string(ready ? "True" : "False")]]
        if unschedulable {
            conditions.append(["type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."])
        }
        object.set(["status", "conditions"], to: .array(conditions))
        let state: JSONValue = waiting.map { ["waiting": ["reason": .string($0), "message": "back-off 10s restarting failed container"]] }
            ?? ["running": ["startedAt": "now"]]
        object.set(["status", "containerStatuses"], to: [
            ["name": "app", "ready": .bool(ready && waiting == nil), "restartCount": 3, "state": state,
             "lastState": ["terminated": ["exitCode": 1, "reason": "Error"]]],
            ["name": "exporter", "ready": .bool(ready), "restartCount": 0, "state": ["running": ["startedAt": "now"]]],
        ])
        return try! object.decode(as: Pod.self)
    }

    static func daemonSet(desired: Int, ready: Int, generation: Int = 1, observed: Int = 1) -> Workload {
        let object: JSONValue = ["kind": "DaemonSet", "metadata": ["name": "ds", "namespace": "ns", "generation": .number(Double(generation))],
                  "spec": ["selector": ["matchLabels": ["app": "x"]]],
                  "status": ["observedGeneration": .number(Double(observed)), "desiredNumberScheduled": .number(Double(desired)),
                             "currentNumberScheduled": .number(Double(desired)), "updatedNumberScheduled": .number(Double(desired)),
                             "numberReady": .number(Double(ready)), "numberAvailable": .number(Double(ready))]]
        return Workload(try! object.decode(as: DaemonSet.self))
    }

    static func deployment(replicas: Int, ready: Int) -> Workload {
        let object: JSONValue = ["kind": "Deployment", "metadata": ["name": "app", "namespace": "ns", "generation": 1],
                  "spec": ["replicas": .number(Double(replicas)), "selector": ["matchLabels": ["app": "x"]]],
                  "status": ["observedGeneration": 1, "replicas": .number(Double(replicas)), "updatedReplicas": .number(Double(replicas)),
                             "readyReplicas": .number(Double(ready)), "availableReplicas": .number(Double(ready))]]
        return Workload(try! object.decode(as: Deployment.self))
    }

    let nodes = [node("cp", controlPlane: true), node("w1"), node("w2")]

    @Test("a DaemonSet is ready with one Ready pod on each worker and all counts equal")
    func daemonSetReady() {
        let rules = RolloutRules(pattern: .daemonset, nodes: 3)
        let state = rules.evaluate(workloads: [Self.daemonSet(desired: 2, ready: 2)],
                                   pods: [Self.pod("a", node: "w1"), Self.pod("b", node: "w2")], nodes: nodes)
        #expect(state == .ready)
    }

    @Test("numberReady ≥ 1 is not enough: a worker without its Ready pod keeps the rollout waiting, named")
    func daemonSetMissingNode() {
        let rules = RolloutRules(pattern: .daemonset, nodes: 3)
        let state = rules.evaluate(workloads: [Self.daemonSet(desired: 2, ready: 1)],
                                   pods: [Self.pod("a", node: "w1"), Self.pod("b", node: "w2", ready: false)], nodes: nodes)
        guard case .progressing(let missing) = state else { Issue.record("\(state)"); return }
        #expect(missing == ["DaemonSet/ds: ready 1, available 1 of desired 2", "node w2: 0 Ready of 1 ds pods, want exactly 1 Ready"])
    }

    @Test("an unobserved generation is progressing whatever the counts say")
    func generation() {
        let state = RolloutRules(pattern: .daemonset, nodes: 3).evaluate(
            workloads: [Self.daemonSet(desired: 2, ready: 2, generation: 2, observed: 1)],
            pods: [Self.pod("a", node: "w1"), Self.pod("b", node: "w2")], nodes: nodes)
        #expect(state == .progressing(["DaemonSet/ds: generation 2 not yet observed (observedGeneration 1)"]))
    }

    @Test("fatal waiting reasons fail at once with container, message and last termination",
          arguments: ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"])
    func failFast(reason: String) {
        let state = RolloutRules(pattern: .daemonset, nodes: 3).evaluate(
            workloads: [Self.daemonSet(desired: 2, ready: 1)],
            pods: [Self.pod("a", node: "w1"), Self.pod("b", node: "w2", ready: false, waiting: reason)], nodes: nodes)
        #expect(state == .failed([PodProblem(pod: "b", node: "w2", container: "app", reason: reason,
                                             message: "back-off 10s restarting failed container",
                                             lastTermination: "exit code 1, reason Error", restartCount: 3)]))
    }

    @Test("Unschedulable waits out its grace period, then fails with the scheduler's message")
    func unschedulable() {
        let rules = RolloutRules(pattern: .sidecar, nodes: 3, unschedulableGrace: .seconds(15))
        let pods = [Self.pod("a", node: "w1"), Self.pod("b", node: "w2"), Self.pod("c", node: nil, ready: false, unschedulable: true)]
        let early = rules.evaluate(workloads: [Self.deployment(replicas: 3, ready: 2)], pods: pods, nodes: nodes, unschedulableFor: ["c": .seconds(3)])
        guard case .progressing = early else { Issue.record("\(early)"); return }
        let late = rules.evaluate(workloads: [Self.deployment(replicas: 3, ready: 2)], pods: pods, nodes: nodes, unschedulableFor: ["c": .seconds(15)])
        #expect(late == .failed([PodProblem(pod: "c", node: nil, reason: "Unschedulable",
                                            message: "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.")]))
    }

    @Test("a NotReady node that hosts a run pod fails the rollout naming the node")
    func nodeNotReady() {
        let state = RolloutRules(pattern: .daemonset, nodes: 3).evaluate(
            workloads: [Self.daemonSet(desired: 2, ready: 1)],
            pods: [Self.pod("a", node: "w1"), Self.pod("b", node: "w2", ready: false)],
            nodes: [Self.node("cp", controlPlane: true), Self.node("w1"), Self.node("w2", ready: false)])
        guard case .failed(let problems) = state else { Issue.record("\(state)"); return }
        #expect(problems.map(\.reason) == ["NodeNotReady"])
        #expect(problems.first?.node == "w2")
        #expect(problems.first?.message == "node w2 Ready=False (KubeletNotReady)")
    }

    @Test("sidecar: N Ready pods on N distinct nodes; two on one node are not enough")
    func sidecarDistinctNodes() {
        let rules = RolloutRules(pattern: .sidecar, nodes: 3)
        let spread = [Self.pod("a", node: "cp"), Self.pod("b", node: "w1"), Self.pod("c", node: "w2")]
        #expect(rules.evaluate(workloads: [Self.deployment(replicas: 3, ready: 3)], pods: spread, nodes: nodes) == .ready)
        let stacked = [Self.pod("a", node: "w1"), Self.pod("b", node: "w1"), Self.pod("c", node: "w2")]
        #expect(rules.evaluate(workloads: [Self.deployment(replicas: 3, ready: 3)], pods: stacked, nodes: nodes)
                == .progressing(["app: 3 pods Ready with every container on 2 distinct nodes, want 3 on 3"]))
    }

    @Test("a DaemonSet counts a cordoned worker as eligible (the controller's automatic tolerations), not the control plane")
    func automaticTolerations() throws {
        let cordoned: JSONValue = ["metadata": ["name": "w2"], "spec": ["unschedulable": true,
                                   "taints": [["key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"]]],
                                   "status": ["conditions": [["type": "Ready", "status": "True"]]]]
        let node = try cordoned.decode(as: Node.self)
        let daemonSet = Self.daemonSet(desired: 2, ready: 2)
        #expect(daemonSet.tolerates(node))
        #expect(!daemonSet.tolerates(Self.node("cp", controlPlane: true)))
        #expect(!Self.deployment(replicas: 1, ready: 1).tolerates(node))
    }
}
