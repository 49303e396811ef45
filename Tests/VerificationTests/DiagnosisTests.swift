import Foundation
import KubeModel
import Testing
import Verification

/// Which container a timed-out rollout blames.
@Suite("Diagnosis of a timed-out pod")
struct DiagnosisTests {
    static func pod(initState: String, sidecar: Bool = false, sidecarReady: Bool = true) throws -> Pod {
        let sidecarSpec = sidecar ? #", {"name": "log-shipper", "image": "busybox", "restartPolicy": "Always"}"# : ""
        let sidecarStatus = sidecar ? #", {"name": "log-shipper", "ready": \#(sidecarReady), "restartCount": 0, "state": {"running": {}}}"# : ""
        let json = """
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app-x", "namespace": "kverify-r"},
             "spec": {"nodeName": "kverify-sim-worker",
                      "initContainers": [{"name": "wait-for-redis", "image": "redis:7"}\(sidecarSpec)],
                      "containers": [{"name": "app", "image": "a"}, {"name": "prometheus-exporter", "image": "e"}]},
             "status": {"phase": "\(initState == "completed" ? "Running" : "Pending")",
                        "initContainerStatuses": [{"name": "wait-for-redis", "ready": false, "restartCount": 0,
                                                   "state": \(initState == "completed" ? #"{"terminated": {"exitCode": 0, "reason": "Completed"}}"# : #"{"running": {}}"#)}\(sidecarStatus)],
                        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}},
                                              {"name": "prometheus-exporter", "ready": false, "restartCount": 0, "state": {"running": {}}}]}}
            """
        return try JSONDecoder().decode(Pod.self, from: Data(json.utf8))
    }

    @Test("a completed init container (ready: false for ever) is not blamed; the unready prometheus-exporter is")
    func completedInitIsNotTheCulprit() throws {
        let problem = Diagnosis.timeoutProblem(try Self.pod(initState: "completed"))
        #expect(problem.container == "prometheus-exporter")
        #expect(problem.reason == "Running")
        #expect(problem.node == "kverify-sim-worker")
    }

    @Test("an init container still running is the one blamed")
    func runningInitIsTheCulprit() throws {
        #expect(Diagnosis.timeoutProblem(try Self.pod(initState: "running")).container == "wait-for-redis")
    }

    @Test("a native sidecar (an init container with restartPolicy Always) is blamed when it is not Ready, and only then")
    func sidecar() throws {
        #expect(Diagnosis.timeoutProblem(try Self.pod(initState: "completed", sidecar: true, sidecarReady: false)).container == "log-shipper")
        #expect(Diagnosis.timeoutProblem(try Self.pod(initState: "completed", sidecar: true, sidecarReady: true)).container == "prometheus-exporter")
    }
}
