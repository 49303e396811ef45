import Foundation
import SimFaults
import SimStore
import KubeModel

/// What the kubelet knows about one pod, rendered into `status` the way the real kubelet writes it.
package struct PodStatusModel: Sendable {
    struct Terminated: Sendable, Equatable {
        var exitCode: Int32
        var reason: String
        var message: String?
        var startedAt: String
        var finishedAt: String
    }

    enum State: Sendable, Equatable {
        case waiting(reason: String, message: String?)
        case running(startedAt: String)
        case terminated(Terminated)
    }

    struct Container: Sendable {
        var name: String
        var image: String
        var state: State = .waiting(reason: "ContainerCreating", message: nil)
        var lastTerminated: Terminated?
        var restartCount = 0
        var ready = false
        var started = false
    }

    struct Condition: Sendable {
        var status: String
        var reason: String?
        var message: String?
        var lastTransitionTime: String
    }

    var phase = "Pending"
    var podIP: String?
    var hostIP: String?
    var startTime = ObjectStore.now()
    var initContainers: [Container]
    var containers: [Container]
    var conditions: [(type: String, condition: Condition)] = []
    /// Set when the node this pod runs on stopped reporting (a fault): every container counts as not ready.
    var nodeLost = false
    /// The pod is being deleted: once every container has terminated, its phase is terminal whatever the restart
    /// policy (Succeeded when all exited 0, else Failed), as the kubelet reports a deleted pod's end.
    var deleted = false

    init(initContainers: [Container], containers: [Container]) {
        self.initContainers = initContainers
        self.containers = containers
        for type in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"] {
            conditions.append((type, Condition(status: "False", lastTransitionTime: ObjectStore.now())))
        }
        setCondition("PodScheduled", true)
    }

    /// Changes a condition, keeping its transition time when the status stays.
    mutating func setCondition(_ type: String, _ value: Bool, reason: String? = nil, message: String? = nil) {
        let status = value ? "True" : "False"
        guard let index = conditions.firstIndex(where: { $0.type == type }) else { return }
        var condition = conditions[index].condition
        if condition.status != status { condition.lastTransitionTime = ObjectStore.now() }
        condition.status = status
        condition.reason = reason
        condition.message = message
        conditions[index].condition = condition
    }

    /// Derives phase and the readiness conditions from the containers (the kubelet's `generateAPIPodStatus`).
    mutating func refresh(initialized: Bool, restartPolicy: String) {
        let notReady = containers.filter { !$0.ready || nodeLost }.map(\.name)
        let message = notReady.isEmpty ? nil : "containers with unready status: [\(notReady.joined(separator: " "))]"
        let pendingInit = initContainers.filter { if case .terminated(let t) = $0.state { return t.exitCode != 0 } else { return true } }.map(\.name)
        setCondition("Initialized", initialized, reason: initialized ? nil : "ContainersNotInitialized",
                     message: initialized ? nil : "containers with incomplete status: [\(pendingInit.joined(separator: " "))]")
        setCondition("ContainersReady", notReady.isEmpty && initialized, reason: notReady.isEmpty ? nil : "ContainersNotReady", message: message)
        setCondition("Ready", notReady.isEmpty && initialized, reason: notReady.isEmpty ? nil : "ContainersNotReady", message: message)
        setCondition("PodReadyToStartContainers", podIP != nil)
        let states = containers.map(\.state)
        let running = states.contains { if case .running = $0 { return true } else { return false } }
        let allTerminated = !states.isEmpty && states.allSatisfy { if case .terminated = $0 { return true } else { return false } }
        if allTerminated && (restartPolicy != "Always" || deleted) {
            let failed = states.contains { if case .terminated(let t) = $0 { return t.exitCode != 0 } else { return false } }
            phase = failed ? "Failed" : "Succeeded"
        } else if running || containers.contains(where: { $0.restartCount > 0 }) {
            phase = "Running"
        } else {
            phase = "Pending"
        }
    }

    func render() -> JSONValue {
        func state(_ state: State) -> JSONValue {
            switch state {
            case .waiting(let reason, let message):
                var waiting: JSONValue = ["reason": .string(reason)]
                if let message { waiting.set(["message"], to: .string(message)) }
                return ["waiting": waiting]
            case .running(let startedAt): return ["running": ["startedAt": .string(startedAt)]]
            case .terminated(let terminated): return ["terminated": Self.render(terminated)]
            }
        }
        func container(_ container: Container) -> JSONValue {
            var json: JSONValue = [
                "name": .string(container.name), "image": .string(container.image),
                "imageID": .string(container.image.contains("@") ? container.image : "kverify-sim://\(container.image)"),
                "ready": .bool(container.ready && !nodeLost), "started": .bool(container.started),
                "restartCount": .number(Double(container.restartCount)), "state": state(container.state),
                "lastState": container.lastTerminated.map { ["terminated": Self.render($0)] } ?? [:],
            ]
            if case .running = container.state {
                json.set(["containerID"], to: .string("kverify-sim://\(container.name)-\(container.restartCount)"))
            }
            return json
        }
        var status: JSONValue = [
            "phase": .string(phase), "startTime": .string(startTime), "qosClass": "Burstable",
            "conditions": .array(conditions.map { type, condition in
                var json: JSONValue = ["type": .string(type), "status": .string(condition.status),
                                       "lastProbeTime": .null, "lastTransitionTime": .string(condition.lastTransitionTime)]
                if let reason = condition.reason { json.set(["reason"], to: .string(reason)) }
                if let message = condition.message { json.set(["message"], to: .string(message)) }
                return json
            }),
            "containerStatuses": .array(containers.map(container)),
        ]
        if !initContainers.isEmpty { status.set(["initContainerStatuses"], to: .array(initContainers.map(container))) }
        if let hostIP {
            status.set(["hostIP"], to: .string(hostIP))
            status.set(["hostIPs"], to: [["ip": .string(hostIP)]])
        }
        if let podIP {
            status.set(["podIP"], to: .string(podIP))
            status.set(["podIPs"], to: [["ip": .string(podIP)]])
        }
        return status
    }

    static func render(_ terminated: Terminated) -> JSONValue {
        var json: JSONValue = ["exitCode": .number(Double(terminated.exitCode)), "reason": .string(terminated.reason),
                               "startedAt": .string(terminated.startedAt), "finishedAt": .string(terminated.finishedAt)]
        if let message = terminated.message { json.set(["message"], to: .string(message)) }
        return json
    }
}
