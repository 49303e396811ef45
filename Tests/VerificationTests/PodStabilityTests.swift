import Findings
import Foundation
import KVerifyTestSupport
import KubeClient
import KubeModel
import KubeSim
import Testing
@testable import Verification

@Suite("Pod stability after Ready (pods.stable)")
struct PodStabilityTests {
    static func pod(_ name: String, uid: String, restarts: [String: Int], exitCode: Int? = nil) throws -> Pod {
        let statuses = restarts.sorted { $0.key < $1.key }.map { name, count in
            let last = exitCode.map { #", "lastState": {"terminated": {"exitCode": \#($0), "reason": "Error"}}"# } ?? ""
            return #"{"name": "\#(name)", "ready": true, "restartCount": \#(count), "state": {"running": {}}\#(last)}"#
        }
        let json = #"""
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "\#(name)", "uid": "\#(uid)"},
             "spec": {"nodeName": "node-b", "containers": [{"name": "web", "image": "w"}, {"name": "metrics", "image": "m"}]},
             "status": {"phase": "Running", "containerStatuses": [\#(statuses.joined(separator: ", "))]}}
            """#
        return try JSONDecoder().decode(Pod.self, from: Data(json.utf8))
    }

    @Test("a container whose restart count grew is named with how it ended; an unchanged pod is not")
    func restartCounted() throws {
        let before = [try Self.pod("shop-1", uid: "u1", restarts: ["web": 2, "metrics": 0]), try Self.pod("shop-2", uid: "u2", restarts: ["web": 0, "metrics": 0])]
        let after = [try Self.pod("shop-1", uid: "u1", restarts: ["web": 3, "metrics": 0], exitCode: 137),
                     try Self.pod("shop-2", uid: "u2", restarts: ["web": 0, "metrics": 0])]
        let (restarted, gone) = PodStability.restarts(before: before, after: after)
        #expect(restarted == [PodStability.Restart(pod: "shop-1", node: "node-b", container: "web", before: 2, after: 3,
                                                   lastTermination: "exit code 137, reason Error")])
        #expect(gone.isEmpty)
    }

    @Test("a pod replaced under the same name (new uid) or deleted is reported gone, not compared")
    func replacedPod() throws {
        let before = [try Self.pod("shop-1", uid: "u1", restarts: ["web": 0]), try Self.pod("shop-2", uid: "u2", restarts: ["web": 0])]
        let after = [try Self.pod("shop-1", uid: "u9", restarts: ["web": 0])]
        let (restarted, gone) = PodStability.restarts(before: before, after: after)
        #expect(restarted.isEmpty)
        #expect(gone.map(\.name) == ["shop-1", "shop-2"])
    }

    /// A real restart on the sim: the container's process is killed after the pod was Ready; the kubelet restarts
    /// it, and the check names the container, the restart count and the exit code.
    @Test("a container killed after Ready fails pods.stable on the sim with its exit code")
    func killedOnSim() async throws {
        try await SimulatedCluster.with(options: .init(nodes: 2)) { sim in
            let api = try SimSupport.api(sim)
            try await api.createNamespace("stability")
            let script = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
            let pod: JSONValue = [
                "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "sleeper", "namespace": "stability"],
                "spec": ["containers": [["name": "worker", "image": "kverify-demo-app:dev", "command": ["python", "-c", .string(script)]]]],
            ]
            _ = try await api.apply(pod, resource: .pods, fieldManager: "test", force: true)
            var ready: [Pod] = []
            var pid: Int32 = 0
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, pid == 0 {
                ready = try await api.list(Pod.self, namespace: "stability")
                if ready.first?.status?.containerStatuses.first?.ready == true {
                    pid = Int32((try? await api.logs(pod: "sleeper", namespace: "stability", container: nil, tailLines: 1))?
                        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
                }
                if pid == 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(pid > 0, "the pod never became Ready and printed its pid")
            let check = PodStability(namespace: "stability")
            #expect(await check.run(readyPods: ready, api: api).map(\.status) == [.pass])

            #expect(kill(pid, SIGKILL) == 0)
            var findings: [Finding] = []
            while ContinuousClock.now < deadline {
                findings = await check.run(readyPods: ready, api: api)
                if findings.contains(where: { $0.status == .fail }) { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let failed = try #require(findings.first { $0.status == .fail }, "\(findings)")
            #expect(failed.subject == "node/\(ready[0].nodeName ?? "?") pod/sleeper container/worker")
            #expect(failed.observed == "restartCount 0 → 1")
            #expect(failed.detail?.contains("last termination: exit code 137") == true, "\(failed.detail ?? "")")
        }
    }
}
