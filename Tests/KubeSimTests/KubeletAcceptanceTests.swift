import Foundation
import KVerifyTestSupport
import KubeModel
import Processes
import Testing
@testable import KubeSim
@testable import SimStore
@testable import SimFaults
@testable import SimControlPlane
@testable import SimAPIServer
@testable import SimNode

/// The kubelet: pods are real processes (redis-server, gunicorn with the real exporter), readiness comes from real
/// probes, and the real kubectl 1.32 sees it all as it would on kind.
@Suite("sim kubelet with real processes", .serialized, .simSlot)
struct KubeletAcceptanceTests {
    static let manifests = RepositoryPaths.root.appendingPathComponent("manifests")

    /// A JSON field of one object, through kubectl's jsonpath.
    static func field(_ kubectl: Kubectl, _ arguments: String...) async throws -> String {
        try await kubectl.run(Array(arguments)).stdout
    }

    @Test("the DaemonSet pattern runs for real: probes make pods Ready, rollout status passes, the exporter serves traffic's metrics, Service DNS reaches Redis, and deleting the namespace stops every process")
    func daemonSetPattern() async throws {
        try await withSim(nodes: 3) { sim, kubectl in
            try await kubectl("create", "namespace", "demo").expectSuccess()
            let applied = try await kubectl("apply", "--server-side", "-n", "demo", "-f", Self.manifests.appendingPathComponent("redis.yaml").path,
                                            "-f", Self.manifests.appendingPathComponent("daemonset.yaml").path)
            #expect(applied.status == 0, "\(applied)")
            let rollout = try await kubectl("rollout", "status", "-n", "demo", "ds/gunicorn-prometheus-exporter-daemonset", "--timeout=90s", timeout: .seconds(100))
            #expect(rollout.status == 0, "\(rollout)")
            try await kubectl("rollout", "status", "-n", "demo", "deploy/redis", "--timeout=30s").expectSuccess()
            let ready = try await kubectl("wait", "-n", "demo", "--for=condition=Ready", "pod", "-l", "component=daemonset", "--timeout=30s")
            #expect(ready.status == 0, "\(ready)")

            // One pod on each worker, each with its own loopback address inside the sim's network.
            let placement = try await Self.field(kubectl, "get", "pods", "-n", "demo", "-l", "component=daemonset", "-o",
                                                 "jsonpath={range .items[*]}{.spec.nodeName} {.status.podIP} {.metadata.name}{\"\\n\"}{end}")
            let rows = placement.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(rows.map { $0[0] }.sorted() == ["kverify-sim-worker", "kverify-sim-worker2"])
            #expect(Set(rows.map { $0[1] }).count == 2)
            #expect(rows.allSatisfy { $0[1].hasPrefix("127.\(sim.network.octet).") })

            // Traffic through the API proxy reaches gunicorn; its workers store metrics in Redis (reached as
            // `redis-service`), and the exporter container serves them.
            let pod = try #require(rows.first?[2])
            for _ in 0..<5 {
                let answer = try await kubectl("get", "--raw", "/api/v1/namespaces/demo/pods/\(pod):8000/proxy/")
                #expect(answer.stdout.contains("\"pod\": \"\(pod)\""), "\(answer)")
            }
            // The workers write to Redis as they serve; on a busy machine the exporter may see them a moment later.
            var metrics = Kubectl.Result(status: 1, stdout: "", stderr: "")
            var requests = 0.0
            let deadline = ContinuousClock.now + .seconds(30)
            while requests < 5, ContinuousClock.now < deadline {
                metrics = try await kubectl("get", "--raw", "/api/v1/namespaces/demo/pods/\(pod):9091/proxy/metrics")
                requests = metrics.stdout.split(separator: "\n").filter { $0.hasPrefix("gunicorn_worker_requests_total{") }
                    .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
                if requests < 5 { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(requests >= 5, "\(metrics.stdout.prefix(800))")
            let sidecarLog = try await kubectl("logs", "-n", "demo", pod, "-c", "prometheus-exporter")
            #expect(sidecarLog.stdout.contains("serving metrics from redis prefix 'gunicorn-\(pod)'"), "\(sidecarLog)")

            // The Redis NodePort answers on every node's address with the keys the pod wrote.
            let nodePort = try await Self.field(kubectl, "get", "svc", "-n", "demo", "redis-service", "-o", "jsonpath={.spec.ports[0].nodePort}")
            let keys = try await RedisKeys.count(host: sim.nodeAddresses[2], port: Int(nodePort) ?? 0, pattern: "gunicorn-\(pod):*")
            #expect(keys > 0)

            // Kubelet events, found by the pod's uid as kverify will look them up.
            let uid = try await Self.field(kubectl, "get", "pod", "-n", "demo", pod, "-o", "jsonpath={.metadata.uid}")
            let reasons = try await Self.field(kubectl, "get", "events", "-n", "demo", "--field-selector", "involvedObject.uid=\(uid)",
                                               "-o", "jsonpath={.items[*].reason}")
            for reason in ["Scheduled", "Pulled", "Created", "Started"] { #expect(reasons.contains(reason), "\(reasons)") }

            // Deleting the namespace takes every process with it.
            let addresses = rows.map { $0[1] }
            try await kubectl("delete", "namespace", "demo", "--timeout=60s").expectSuccess()
            let stopped = await eventually(timeout: .seconds(20)) {
                addresses.allSatisfy { !TCPProbe.canConnect(host: $0, port: 8000) && !TCPProbe.canConnect(host: $0, port: 9091) }
            }
            #expect(stopped)
        }
    }

    @Test("the sidecar pattern spreads N replicas over N distinct nodes, the control plane included")
    func sidecarPattern() async throws {
        try await withSim(nodes: 3) { _, kubectl in
            try await kubectl("create", "namespace", "demo").expectSuccess()
            let applied = try await kubectl("apply", "--server-side", "-n", "demo", "-f", Self.manifests.appendingPathComponent("redis.yaml").path,
                                            "-f", Self.manifests.appendingPathComponent("sidecar.yaml").path)
            #expect(applied.status == 0, "\(applied)")
            let rollout = try await kubectl("rollout", "status", "-n", "demo", "deploy/gunicorn-app-with-sidecar", "--timeout=90s", timeout: .seconds(100))
            #expect(rollout.status == 0, "\(rollout)")
            let nodes = try await Self.field(kubectl, "get", "pods", "-n", "demo", "-l", "component=sidecar", "-o", "jsonpath={.items[*].spec.nodeName}")
            #expect(nodes.split(separator: " ").sorted() == ["kverify-sim-control-plane", "kverify-sim-worker", "kverify-sim-worker2"], "\(nodes)")
            let status = try await Self.field(kubectl, "get", "deploy", "-n", "demo", "gunicorn-app-with-sidecar", "-o",
                                              "jsonpath={.status.readyReplicas}/{.status.updatedReplicas}/{.status.availableReplicas}/{.status.conditions[?(@.type==\"Available\")].status}")
            #expect(status == "3/3/3/True")
        }
    }

    static func pod(_ name: String, command: [String], image: String = "kverify-demo-app:dev", extra: String = "") -> String {
        let quoted = command.map { "\"\($0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" }
        return """
            apiVersion: v1
            kind: Pod
            metadata: {name: \(name), namespace: default, labels: {test: \(name)}}
            spec:
            \(extra)  containers:
              - name: main
                image: \(image)
                command: [\(quoted.joined(separator: ", "))]
            """
    }

    @Test("a container that exits is restarted with back-off: CrashLoopBackOff, restartCount, lastState and its output")
    func crashLoop() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            let crashing = Self.pod("crasher", command: ["python", "-c", "import sys; print('boom: config missing', flush=True); sys.exit(3)"])
            try await kubectl("apply", "--server-side", "-f", "-", stdin: crashing).expectSuccess()
            let store = sim.store
            let looping = await eventually(timeout: .seconds(30)) {
                let pod = try? store.get(ResourceCatalog.all[2], namespace: "default", name: "crasher")
                return pod?.value(at: ["status", "containerStatuses"])?.arrayValue?.first?.value(at: ["state", "waiting", "reason"])?.stringValue == "CrashLoopBackOff"
            }
            #expect(looping)
            let seen = try await Self.field(kubectl, "get", "pod", "crasher", "-o",
                                            "jsonpath={.status.containerStatuses[0].state.waiting.reason}/{.status.containerStatuses[0].lastState.terminated.exitCode}/{.status.containerStatuses[0].lastState.terminated.reason}/{.status.containerStatuses[0].restartCount}")
            let parts = seen.split(separator: "/").map(String.init)
            #expect(Array(parts.prefix(3)) == ["CrashLoopBackOff", "3", "Error"], "\(seen)")
            #expect((Int(parts.last ?? "") ?? 0) >= 1)
            let listed = try await kubectl("get", "pod", "crasher")
            #expect(listed.stdout.contains("CrashLoopBackOff"), "\(listed)")
            let logs = try await kubectl("logs", "crasher")
            #expect(logs.stdout.contains("boom: config missing"), "\(logs)")
            let events = try await Self.field(kubectl, "get", "events", "--field-selector", "reason=BackOff", "-o", "jsonpath={.items[*].message}")
            #expect(events.contains("Back-off restarting failed container main in pod crasher_default"), "\(events)")
        }
    }

    @Test("an image without a runtime entry fails to pull: ErrImagePull, then ImagePullBackOff, with a Failed event")
    func imagePullFailure() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("nopull", command: ["true"], image: "ghcr.io/example/nosuch:1")).expectSuccess()
            let store = sim.store
            let backingOff = await eventually(timeout: .seconds(20)) {
                let pod = try? store.get(ResourceCatalog.all[2], namespace: "default", name: "nopull")
                return pod?.value(at: ["status", "containerStatuses"])?.arrayValue?.first?.value(at: ["state", "waiting", "reason"])?.stringValue == "ImagePullBackOff"
            }
            #expect(backingOff)
            let events = try await Self.field(kubectl, "get", "events", "--field-selector", "reason=Failed", "-o", "jsonpath={.items[*].message}")
            #expect(events.contains("Failed to pull image \"ghcr.io/example/nosuch:1\""), "\(events)")
            #expect(events.contains("runtime map"), "\(events)")
        }
    }

    @Test("a missing executable is a StartError (exit 128) that crash-loops")
    func missingExecutable() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("noexec", command: ["kverify-no-such-binary"])).expectSuccess()
            let store = sim.store
            let failed = await eventually(timeout: .seconds(20)) {
                let pod = try? store.get(ResourceCatalog.all[2], namespace: "default", name: "noexec")
                return pod?.value(at: ["status", "containerStatuses"])?.arrayValue?.first?.value(at: ["lastState", "terminated", "reason"])?.stringValue == "StartError"
            }
            #expect(failed)
            let message = try await Self.field(kubectl, "get", "pod", "noexec", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.message}")
            #expect(message.hasPrefix("128 "), "\(message)")
            #expect(message.contains("\"kverify-no-such-binary\": executable file not found in $PATH"), "\(message)")
        }
    }

    @Test("a process that ignores SIGTERM is killed after the grace period when its pod is deleted")
    func stubbornProcess() async throws {
        try await withSim(nodes: 2) { _, kubectl in
            let script = "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(os.getpid(), flush=True); time.sleep(600)"
            let stubborn = Self.pod("stubborn", command: ["python", "-c", script], extra: "  terminationGracePeriodSeconds: 1\n")
            try await kubectl("apply", "--server-side", "-f", "-", stdin: stubborn).expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod/stubborn", "--timeout=30s").expectSuccess()
            var pid: Int32 = 0
            for _ in 0..<100 {
                if let value = Int32((try await kubectl("logs", "stubborn")).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    pid = value
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(pid > 0)
            #expect(kill(pid, 0) == 0, "the pod's process runs")
            try await kubectl("delete", "pod", "stubborn", "--wait=true").expectSuccess()
            let gone = await eventually(timeout: .seconds(10)) { kill(pid, 0) != 0 }
            #expect(gone, "pid \(pid) survived its pod")
        }
    }

    /// A process that left its container's process group (`setsid`, as a daemonizing script does) is out of reach of
    /// the group kill; a runtime kills the container's whole cgroup, so the sim kills what carries its mark.
    @Test("a process that left its container's process group with setsid, from the container or from an exec session, ends with its pod")
    func escapedProcess() async throws {
        try await withSim(nodes: 2) { _, kubectl in
            let script = "import os, time; child = os.fork(); "
                + "(os.setsid(), print(os.getpid(), os.getpgid(0), flush=True), time.sleep(600)) if child == 0 else time.sleep(600)"
            try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("escapee", command: ["python", "-c", script],
                                                                                  extra: "  terminationGracePeriodSeconds: 1\n")).expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod/escapee", "--timeout=30s").expectSuccess()
            var printed: [Int32] = []
            for _ in 0..<100 where printed.count < 2 {
                printed = (try await kubectl("logs", "escapee")).stdout.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                if printed.count < 2 { try await Task.sleep(for: .milliseconds(100)) }
            }
            let pid = try #require(printed.first)
            #expect(printed == [pid, pid], "the child leads a group of its own: \(printed)")
            #expect(EnvironmentMark.isRunning(pid), "the escaped process runs")
            // An exec session's own escapee: setsid in a background job (not a group leader, so it execs in place).
            let exec = try await kubectl("exec", "escapee", "--", "sh", "-c", "setsid sleep 600 > /dev/null 2>&1 & echo $!")
            try exec.expectSuccess()
            let sessionPID = try #require(Int32(exec.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(exec)")
            #expect(EnvironmentMark.isRunning(sessionPID), "the exec session's escaped process runs")
            try await kubectl("delete", "pod", "escapee", "--wait=true").expectSuccess()
            for escaped in [pid, sessionPID] {
                let gone = await eventually(timeout: .seconds(10)) { !EnvironmentMark.isRunning(escaped) }
                #expect(gone, "pid \(escaped) (setsid) survived its pod")
                if !gone { kill(escaped, SIGKILL) }
            }
        }
    }

    /// A pod name is a DNS subdomain: up to 253 characters, with no 63-character limit on a part (the hostname is
    /// cut to 63). The sim once refused 64 characters and left 252 Pending (its file names too long).
    @Test("pod names of 64 and 252 characters run, their hostname cut to 63; 254 characters are refused with the real message")
    func longPodNames() async throws {
        try await withSim(nodes: 2) { _, kubectl in
            let medium = String(repeating: "m", count: 64)
            let long = String(repeating: "l", count: 120) + "." + String(repeating: "k", count: 131)
            #expect(long.count == 252)
            // No label: a label value may not pass 63 characters, and Self.pod labels the pod with its name.
            func unlabelled(_ name: String) -> String {
                "apiVersion: v1\nkind: Pod\nmetadata: {name: \(name), namespace: default}\nspec:\n  containers:\n  - name: main\n"
                    + "    image: kverify-demo-app:dev\n    command: [sleep, \"600\"]\n"
            }
            for name in [medium, long] {
                try await kubectl("apply", "--server-side", "-f", "-", stdin: unlabelled(name)).expectSuccess()
            }
            try await kubectl("wait", "--for=condition=Ready", "pod/\(medium)", "pod/\(long)", "--timeout=30s").expectSuccess()
            let hostname = try await kubectl("exec", medium, "--", "printenv", "HOSTNAME")
            try hostname.expectSuccess()
            #expect(hostname.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == String(repeating: "m", count: 63))
            let tooLong = try await kubectl("apply", "--server-side", "-f", "-", stdin: unlabelled(String(repeating: "x", count: 254)))
            #expect(tooLong.status != 0)
            #expect(tooLong.stderr.contains("must be no more than 253 characters"), "\(tooLong.stderr)")
        }
    }

    /// Claims as kind's local-path provisioner binds them: Pending until the first pod is scheduled, then a volume on
    /// that pod's node, which every later pod of the claim must use — so the data survives the pod.
    @Test("a PVC waits for its first consumer, binds to a volume on that pod's node, keeps its data for the replacement pod there; a missing claim or class is unschedulable in the scheduler's words")
    func volumeBinding() async throws {
        try await withSim(nodes: 3) { _, kubectl in
            let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: default}\n"
                + "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
            try await kubectl("apply", "--server-side", "-f", "-", stdin: claim).expectSuccess()
            #expect(try await kubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}/{.spec.storageClassName}").stdout == "Pending/standard")
            let deployment = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: writer, namespace: default}
                spec:
                  replicas: 1
                  selector: {matchLabels: {app: writer}}
                  template:
                    metadata: {labels: {app: writer}}
                    spec:
                      terminationGracePeriodSeconds: 1
                      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
                      containers:
                      - name: main
                        image: busybox
                        # The sim maps a mount path where an argument or env value starts with it (sim/runtime.yaml).
                        env: [{name: DATA, value: /data}]
                        command: [sh, -c, "echo $HOSTNAME >> $DATA/log; exec sleep 600"]
                        volumeMounts: [{name: data, mountPath: /data}]
                """
            try await kubectl("apply", "--server-side", "-f", "-", stdin: deployment).expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=writer", "--timeout=60s").expectSuccess()
            let first = try await kubectl("get", "pod", "-l", "app=writer", "-o", "jsonpath={.items[0].metadata.name} {.items[0].spec.nodeName}")
            let firstParts = first.stdout.split(separator: " ").map(String.init)
            try #require(firstParts.count == 2, "\(first)")
            let bound = try await kubectl("get", "pvc", "data", "-o",
                                          "jsonpath={.status.phase} {.spec.volumeName} {.metadata.uid} {.metadata.annotations.volume\\.kubernetes\\.io/selected-node}")
            let boundParts = bound.stdout.split(separator: " ").map(String.init)
            #expect(boundParts.count == 4 && boundParts[0] == "Bound" && boundParts[1] == "pvc-" + boundParts[2] && boundParts[3] == firstParts[1], "\(bound)")
            let volume = try await kubectl("get", "pv", boundParts.count > 1 ? boundParts[1] : "?", "-o",
                                           "jsonpath={.status.phase} {.spec.claimRef.name} {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}")
            #expect(volume.stdout == "Bound data \(firstParts[1])", "\(volume)")

            // The replacement must go to the volume's node (the other worker is emptier), and finds the first pod's line.
            try await kubectl("delete", "pod", firstParts[0], "--wait=true").expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=writer", "--timeout=60s").expectSuccess()
            let second = try await kubectl("get", "pod", "-l", "app=writer", "-o", "jsonpath={.items[0].metadata.name} {.items[0].spec.nodeName}")
            let secondParts = second.stdout.split(separator: " ").map(String.init)
            #expect(secondParts.count == 2 && secondParts[0] != firstParts[0] && secondParts[1] == firstParts[1], "\(second) after \(first)")
            // Ready comes with the start (no probe), maybe before the shell's echo: wait for its line.
            let expected = "\(firstParts[0])\n\(secondParts.first ?? "?")\n"
            _ = await eventuallyAsync { try await kubectl("exec", secondParts.first ?? "?", "--", "cat", "/data/log").stdout == expected }
            let log = try await kubectl("exec", secondParts.first ?? "?", "--", "cat", "/data/log")
            #expect(log.stdout == expected, "\(log)")

            // A claim that does not exist, and a class that does not exist: unschedulable, as the real scheduler says.
            let orphan = Self.pod("orphan", command: ["sleep", "600"], image: "busybox",
                                  extra: "  volumes: [{name: v, persistentVolumeClaim: {claimName: ghost}}]\n")
            try await kubectl("apply", "--server-side", "-f", "-", stdin: orphan).expectSuccess()
            let missing = await eventuallyAsync {
                try await kubectl("get", "pod", "orphan", "-o", "jsonpath={.status.conditions[0].message}").stdout
                    .hasPrefix("0/3 nodes are available: persistentvolumeclaim \"ghost\" not found.")
            }
            let orphanYAML = try await kubectl("get", "pod", "orphan", "-o", "yaml").stdout
            #expect(missing, "\(orphanYAML)")
            // Once the claim exists (of a class that does not), the reason changes; with a real class the pod runs.
            try await kubectl("apply", "--server-side", "-f", "-", stdin: claim.replacingOccurrences(of: "name: data", with: "name: ghost")
                .replacingOccurrences(of: "spec: {", with: "spec: {storageClassName: fast, ")).expectSuccess()
            let noClass = await eventuallyAsync {
                try await kubectl("get", "pod", "orphan", "-o", "jsonpath={.status.conditions[0].message}").stdout
                    .hasPrefix("0/3 nodes are available: storageclass.storage.k8s.io \"fast\" not found.")
            }
            #expect(noClass)
            try await kubectl("delete", "pvc", "ghost").expectSuccess()
            try await kubectl("apply", "--server-side", "-f", "-", stdin: claim.replacingOccurrences(of: "name: data", with: "name: ghost")).expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod/orphan", "--timeout=60s").expectSuccess()

            // The claims gone, their volumes are deleted (reclaim policy Delete).
            try await kubectl("delete", "deployment", "writer", "--wait=true").expectSuccess()
            try await kubectl("delete", "pod", "orphan", "--wait=true").expectSuccess()
            try await kubectl("delete", "pvc", "data", "ghost").expectSuccess()
            let reclaimed = await eventuallyAsync { try await kubectl("get", "pv", "-o", "name").stdout.isEmpty }
            let left = try await kubectl("get", "pv", "-o", "name").stdout
            #expect(reclaimed, "\(left)")
        }
    }

    /// The sim capped every grace period at 10 s: an app that drains longer, within its own grace, was killed (137)
    /// where a node lets it finish.
    @Test("a container that drains for 11 s on SIGTERM, within its 12 s grace, finishes: exit 0, Completed")
    func longDrain() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            let drain = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: (time.sleep(11), sys.exit(0))); print('ready', flush=True); time.sleep(600)"
            try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("drain", command: ["python", "-c", drain],
                                                                                  extra: "  terminationGracePeriodSeconds: 12\n")).expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod/drain", "--timeout=30s").expectSuccess()
            var printed = false
            for _ in 0..<100 where !printed {
                printed = (try await kubectl("logs", "drain")).stdout.contains("ready")
                if !printed { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(printed, "the SIGTERM handler is in place")
            let subscription = sim.store.watchFromCurrentState(ResourceCatalog.all[2])
            defer { subscription.cancel() }
            try await kubectl("delete", "pod", "drain", "--wait=false").expectSuccess()
            var last: JSONValue?
            for await event in subscription.events where event.object.string(at: "metadata", "name") == "drain" {
                if event.type == .deleted { break }
                last = event.object.value(at: ["status"])
            }
            let terminated = last?.value(at: ["containerStatuses"])?.arrayValue?.first?.value(at: ["state", "terminated"])
            #expect(terminated?["exitCode"]?.intValue == 0, "\(String(describing: last))")
            #expect(terminated?["reason"]?.stringValue == "Completed")
        }
    }

    @Test("deleting a pod is graceful as on a real node: Terminating with deletionTimestamp, Killing events, each container's exit in its status (0 Completed on SIGTERM, 137 Error when killed at the grace period), then gone")
    func gracefulDeletion() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            let deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"
            let polite = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); print('ready', flush=True); time.sleep(600)"
            let pods = Self.pod("deaf", command: ["python", "-c", deaf], extra: "  terminationGracePeriodSeconds: 2\n") + "\n---\n"
                + Self.pod("polite", command: ["python", "-c", polite])
            try await kubectl("apply", "--server-side", "-f", "-", stdin: pods).expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod/deaf", "pod/polite", "--timeout=30s").expectSuccess()
            // Both logs say "ready": the SIGTERM handlers are in place.
            for name in ["deaf", "polite"] {
                var printed = false
                for _ in 0..<100 where !printed {
                    printed = (try await kubectl("logs", name)).stdout.contains("ready")
                    if !printed { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(printed, "\(name) never printed ready")
            }
            let subscription = sim.store.watchFromCurrentState(ResourceCatalog.all[2])
            defer { subscription.cancel() }
            let started = ContinuousClock.now
            try await kubectl("delete", "pod", "deaf", "polite", "--wait=false").expectSuccess()
            // While it terminates the pod is still there, Terminating, with its deletion time.
            let terminating = try await kubectl("get", "pod", "deaf", "-o", "jsonpath={.metadata.deletionTimestamp} {.metadata.deletionGracePeriodSeconds}")
            #expect(terminating.stdout.hasSuffix(" 2") && terminating.stdout.count > 10, "\(terminating)")
            #expect(try await kubectl("get", "pod", "deaf").stdout.contains("Terminating"))

            var lastStatus: [String: JSONValue] = [:]
            var gone: Set<String> = []
            for await event in subscription.events {
                guard let name = event.object.string(at: "metadata", "name"), ["deaf", "polite"].contains(name) else { continue }
                if event.type == .deleted { gone.insert(name) } else { lastStatus[name] = event.object.value(at: ["status"]) }
                if gone.count == 2 { break }
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .seconds(2), "the deaf pod went before its grace period: \(elapsed)")
            let deafState = lastStatus["deaf"]?.value(at: ["containerStatuses"])?.arrayValue?.first?.value(at: ["state", "terminated"])
            #expect(deafState?["exitCode"]?.intValue == 137, "\(String(describing: lastStatus["deaf"]))")
            #expect(deafState?["reason"]?.stringValue == "Error")
            #expect(lastStatus["deaf"]?["phase"]?.stringValue == "Failed")
            let politeState = lastStatus["polite"]?.value(at: ["containerStatuses"])?.arrayValue?.first?.value(at: ["state", "terminated"])
            #expect(politeState?["exitCode"]?.intValue == 0, "\(String(describing: lastStatus["polite"]))")
            #expect(politeState?["reason"]?.stringValue == "Completed")
            #expect(lastStatus["polite"]?["phase"]?.stringValue == "Succeeded")
            let killing = try await kubectl("get", "events", "--field-selector", "reason=Killing", "-o", "jsonpath={range .items[*]}{.involvedObject.name}: {.message}{\"\\n\"}{end}")
            #expect(killing.stdout.contains("deaf: Stopping container main") && killing.stdout.contains("polite: Stopping container main"), "\(killing)")
            // --force --grace-period=0 removes a terminating pod at once.
            #expect(try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("deaf2", command: ["python", "-c", deaf],
                                                                                          extra: "  terminationGracePeriodSeconds: 30\n")).status == 0)
            try await kubectl("wait", "--for=condition=Ready", "pod/deaf2", "--timeout=30s").expectSuccess()
            let forced = try await kubectl("delete", "pod", "deaf2", "--force", "--grace-period=0")
            #expect(forced.status == 0, "\(forced)")
            #expect(try await kubectl("get", "pod", "deaf2", "--ignore-not-found", "-o", "name").stdout.isEmpty)
        }
    }

    @Test("stopping the sim stops every pod process, also one that ignores SIGTERM")
    func stopLeavesNothing() async throws {
        let sim = try await SimulatedCluster.start(options: .init(nodes: 2))
        let kubectl = try Kubectl(kubeconfig: sim.kubeconfigPath)
        defer { kubectl.cleanUp() }
        let script = "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(os.getpid(), flush=True); time.sleep(600)"
        let applied = try await kubectl("apply", "--server-side", "-f", "-", stdin: Self.pod("deaf", command: ["python", "-c", script]))
        #expect(applied.status == 0, "\(applied)")
        var pid: Int32 = 0
        for _ in 0..<150 where pid == 0 {
            pid = Int32((try await kubectl("logs", "deaf")).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            if pid == 0 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(pid > 0 && kill(pid, 0) == 0)
        await sim.stop()
        // stop() returns once every process it started has been reaped.
        #expect(kill(pid, 0) != 0, "pid \(pid) outlived the sim")
        #expect(!FileManager.default.fileExists(atPath: sim.stateDirectory.path))
    }

    @Test("more replicas than nodes with required anti-affinity: the scheduler reports Unschedulable in the real scheduler's words")
    func unschedulable() async throws {
        try await withSim(nodes: 3) { _, kubectl in
            let deployment = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: spread, namespace: default}
                spec:
                  replicas: 3
                  selector: {matchLabels: {app: spread}}
                  template:
                    metadata: {labels: {app: spread}}
                    spec:
                      affinity:
                        podAntiAffinity:
                          requiredDuringSchedulingIgnoredDuringExecution:
                          - topologyKey: kubernetes.io/hostname
                            labelSelector: {matchLabels: {app: spread}}
                      containers: [{name: stub, image: "kverify/stub-exporter:1", ports: [{containerPort: 9091}]}]
                """
            try await kubectl("apply", "--server-side", "-f", "-", stdin: deployment).expectSuccess()
            var message = ""
            for _ in 0..<100 where message.isEmpty {
                message = try await Self.field(kubectl, "get", "pods", "-l", "app=spread", "-o",
                                               "jsonpath={.items[*].status.conditions[?(@.reason==\"Unschedulable\")].message}")
                if message.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(message == "0/3 nodes are available: 2 node(s) didn't match pod anti-affinity rules, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.", "\(message)")
            let events = try await Self.field(kubectl, "get", "events", "--field-selector", "reason=FailedScheduling", "-o", "jsonpath={.items[0].message}")
            #expect(events == message)
            let ready = try await Self.field(kubectl, "get", "deploy", "spread", "-o", "jsonpath={.status.availableReplicas}")
            #expect(ready == "2" || ready.isEmpty || ready == "0" || ready == "1")
        }
    }

    @Test("hostPort forwards the node's address to the pod; a hostNetwork pod listens on its node's address")
    func hostPortAndHostNetwork() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            let readiness = "    readinessProbe: {tcpSocket: {port: 8000}, periodSeconds: 1}\n"
            let mapped = Self.pod("mapped", command: ["python", "-m", "http.server", "8000"]) + "\n    ports: [{containerPort: 8000, hostPort: 18080}]\n" + readiness
            let host = Self.pod("host", command: ["python", "-m", "http.server", "8000"], extra: "  hostNetwork: true\n  nodeSelector: {kubernetes.io/hostname: kverify-sim-control-plane}\n  tolerations: [{operator: Exists}]\n") + "\n" + readiness
            for manifest in [mapped, host] {
                let applied = try await kubectl("apply", "--server-side", "-f", "-", stdin: manifest)
                #expect(applied.status == 0, "\(applied)")
            }
            try await kubectl("wait", "--for=condition=Ready", "pod/mapped", "pod/host", "--timeout=30s").expectSuccess()
            let mappedNode = try await Self.field(kubectl, "get", "pod", "mapped", "-o", "jsonpath={.status.hostIP} {.status.podIP}")
            let addresses = mappedNode.split(separator: " ").map(String.init)
            #expect(addresses.count == 2 && addresses[0] != addresses[1])
            let reachable = await eventually(timeout: .seconds(10)) {
                (try? TCPProbe.httpGet(host: addresses.first ?? "", port: 18080, path: "/")) == 200
            }
            #expect(reachable, "hostPort 18080 on \(mappedNode)")
            let hostAddresses = try await Self.field(kubectl, "get", "pod", "host", "-o", "jsonpath={.status.hostIP} {.status.podIP}")
            #expect(hostAddresses == "\(sim.nodeAddresses[0]) \(sim.nodeAddresses[0])")
            #expect((try? TCPProbe.httpGet(host: sim.nodeAddresses[0], port: 8000, path: "/")) == 200)
        }
    }

    @Test("the stub runtime serves its canned exposition on every declared port, with no process")
    func stubRuntime() async throws {
        try await withSim(nodes: 4) { _, kubectl in
            let daemonSet = """
                apiVersion: apps/v1
                kind: DaemonSet
                metadata: {name: stub, namespace: default}
                spec:
                  selector: {matchLabels: {app: stub}}
                  template:
                    metadata: {labels: {app: stub}}
                    spec:
                      containers:
                      - name: exporter
                        image: kverify/stub-exporter:1
                        ports: [{containerPort: 9091, name: metrics}]
                        readinessProbe: {httpGet: {path: /metrics, port: metrics}, periodSeconds: 1}
                """
            try await kubectl("apply", "--server-side", "-f", "-", stdin: daemonSet).expectSuccess()
            try await kubectl("rollout", "status", "ds/stub", "--timeout=30s").expectSuccess()
            let names = try await Self.field(kubectl, "get", "pods", "-l", "app=stub", "-o", "jsonpath={.items[*].metadata.name}")
            let pods = names.split(separator: " ")
            #expect(pods.count == 3)
            let canned = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("sim/stub-metrics.prom"), encoding: .utf8)
            for pod in pods {
                let metrics = try await kubectl("get", "--raw", "/api/v1/namespaces/default/pods/\(pod):9091/proxy/metrics")
                #expect(metrics.stdout == canned)
            }
        }
    }
}

/// Injected faults, seen through the real kubectl.
@Suite("sim faults", .serialized)
struct SimFaultTests {
    @Test("crash on start, from the fault plan, makes a healthy image crash-loop with the fault named in its log")
    func crashOnStart() async throws {
        var faults = FaultPlan()
        faults.crashOnStart = [.init(.init(container: "main"), exitCode: 7)]
        try await withSim(nodes: 2, faults: faults) { sim, kubectl in
            let applied = try await kubectl("apply", "--server-side", "-f", "-", stdin: KubeletAcceptanceTests.pod("healthy", command: ["sleep", "600"]))
            applied.expectSuccess()
            let store = sim.store
            let crashed = await eventually(timeout: .seconds(20)) {
                let status = (try? store.get(ResourceCatalog.all[2], namespace: "default", name: "healthy"))?.value(at: ["status", "containerStatuses"])?.arrayValue?.first
                return status?.value(at: ["lastState", "terminated", "exitCode"])?.intValue == 7
            }
            #expect(crashed)
            let logs = try await kubectl("logs", "healthy")
            #expect(logs.stdout.contains("kverify sim fault: main crashes on start"), "\(logs)")
        }
    }

    @Test("slow readiness keeps a pod unready for the injected time although its probe passes")
    func slowReadiness() async throws {
        var faults = FaultPlan()
        faults.slowReadiness = [.init(.init(container: "main"), delay: .seconds(3))]
        try await withSim(nodes: 2, faults: faults) { _, kubectl in
            let pod = KubeletAcceptanceTests.pod("slow", command: ["python", "-m", "http.server", "8000"])
                + "\n    readinessProbe: {tcpSocket: {port: 8000}, periodSeconds: 1}\n"
            let applied = try await kubectl("apply", "--server-side", "-f", "-", stdin: pod)
            #expect(applied.status == 0, "\(applied)")
            let ready = try await kubectl("wait", "--for=condition=Ready", "pod/slow", "--timeout=30s")
            #expect(ready.status == 0, "\(ready)")
            let times = try await KubeletAcceptanceTests.field(kubectl, "get", "pod", "slow", "-o",
                                                               "jsonpath={.status.containerStatuses[0].state.running.startedAt} {.status.conditions[?(@.type==\"Ready\")].lastTransitionTime}")
            let parsed = times.split(separator: " ").compactMap { ISO8601DateFormatter().date(from: String($0)) }
            #expect(parsed.count == 2)
            if parsed.count == 2 { #expect(parsed[1].timeIntervalSince(parsed[0]) >= 2, "\(times)") }
        }
    }

    @Test("a node going NotReady shows as NotReady in kubectl, and the pods on it turn unready")
    func nodeNotReady() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            let stub = KubeletAcceptanceTests.pod("onworker", command: ["sleep", "600"])
            try await kubectl("apply", "--server-side", "-f", "-", stdin: stub).expectSuccess()
            try await kubectl("wait", "--for=condition=Ready", "pod/onworker", "--timeout=30s").expectSuccess()
            #expect(sim.makeNodeNotReady("kverify-sim-worker"))
            let nodes = try await kubectl("get", "nodes")
            #expect(nodes.stdout.split(separator: "\n").contains { $0.hasPrefix("kverify-sim-worker ") && $0.contains("NotReady") }, "\(nodes)")
            let unready = try await kubectl("wait", "--for=condition=Ready=false", "pod/onworker", "--timeout=20s")
            #expect(unready.status == 0, "\(unready)")
            let reason = try await KubeletAcceptanceTests.field(kubectl, "get", "node", "kverify-sim-worker", "-o",
                                                                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}/{.status.conditions[?(@.type==\"Ready\")].reason}")
            #expect(reason == "Unknown/NodeStatusUnknown")
        }
    }

    @Test("API errors are injected as real Status objects: 500 fails kubectl with the fault's message")
    func apiErrors() async throws {
        try await withSim(nodes: 1) { sim, kubectl in
            var plan = FaultPlan()
            plan.apiErrorRate = 1
            plan.apiErrorCode = 500
            sim.faults.plan = plan
            let failed = try await kubectl("get", "--raw", "/api/v1/nodes")
            #expect(failed.status != 0)
            #expect(failed.stderr.contains("kverify sim fault"), "\(failed)")
            sim.faults.plan = FaultPlan()
            try await kubectl("get", "--raw", "/api/v1/nodes").expectSuccess()
        }
    }

    @Test("a resumed watch can be answered with 410 Gone, so clients must relist")
    func watchGone() async throws {
        try await withSim(nodes: 1, kubelet: .none) { sim, kubectl in
            var plan = FaultPlan()
            plan.watchGoneRate = 1
            sim.faults.plan = plan
            let version = sim.store.currentResourceVersion
            let watched = try await kubectl("get", "--raw", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=\(version)&timeoutSeconds=2")
            #expect(watched.stdout.contains("\"type\":\"ERROR\""), "\(watched)")
            #expect(watched.stdout.contains("\"code\":410"), "\(watched)")
        }
    }

    @Test("the faults file is read with the fields it documents, and rejects unknown ones by name")
    func faultsFile() async throws {
        let plan = try FaultPlan.load(path: RepositoryPaths.root.appendingPathComponent("sim/faults.example.yaml").path)
        #expect(plan.imagePullFailures == [.init(image: "kverify-demo-app:*", container: "prometheus-exporter")])
        #expect(plan.crashOnStart.first?.exitCode == 3)
        #expect(plan.slowReadiness.first?.delay == .seconds(20))
        #expect(plan.nodeNotReady == [.init(node: "kverify-sim-worker2", after: .seconds(30))])
        #expect(plan.apiErrorCode == 429 && plan.apiErrorRate == 0.05 && plan.retryAfterSeconds == 1)
        #expect(plan.apiErrorMix == [.init(code: 500, rate: 0.02), .init(code: 503, rate: 0.01)])
        // The shares are disjoint slices of [0, 1): 429 below 0.05, then 500 up to 0.07, 503 up to 0.08, then none.
        #expect([0.0, 0.049, 0.051, 0.069, 0.071, 0.079, 0.081, 0.99].map { plan.injectedError(roll: $0) } == [429, 429, 500, 500, 503, 503, nil, nil])
        #expect(plan.watchDropAfter == .seconds(10) && plan.watchGoneRate == 0.25)
        #expect(!plan.nodePortsUnreachable)
        let unreachable = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-faults-\(UUID().uuidString.prefix(6)).yaml")
        defer { try? FileManager.default.removeItem(at: unreachable) }
        try Data("network: {nodePortsUnreachable: true}\n".utf8).write(to: unreachable)
        #expect(try FaultPlan.load(path: unreachable.path).nodePortsUnreachable)
        #expect(plan.execCutRate == 0)
        try Data("exec: {cutRate: 0.5}\n".utf8).write(to: unreachable)
        #expect(try FaultPlan.load(path: unreachable.path).execCutRate == 0.5)
        try Data("exec: {cutRate: 2}\n".utf8).write(to: unreachable)
        #expect(throws: SimError.self) { try FaultPlan.load(path: unreachable.path) }
        var options = SimulatedCluster.Options(nodes: 2)
        options.faults.nodeNotReady = [.init(node: "kverify-sim-worker9")]
        await #expect(throws: SimError.self) { _ = try await SimulatedCluster.start(options: options) }
        // Out-of-range numbers (a third adversarial pass: 1e18 ms of latency started a sim that never answered).
        for (yaml, message) in [("api: {latencyMilliseconds: 1e18}\n", "api.latencyMilliseconds must be between 0 and 60000, got 1e+18"),
                                ("watch: {dropAfterSeconds: -1}\n", "watch.dropAfterSeconds must be between 0.001 and 86400, got -1"),
                                ("crashOnStart: [{exitCode: 300}]\n", "crashOnStart.exitCode must be between 0 and 255, got 300")] {
            try Data(yaml.utf8).write(to: unreachable)
            #expect(throws: SimError.self) { try FaultPlan.load(path: unreachable.path) }
            do { _ = try FaultPlan.load(path: unreachable.path) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
        try Data("network: {nodePortsUnreachable: 1}\n".utf8).write(to: unreachable)
        #expect(throws: SimError.self) { try FaultPlan.load(path: unreachable.path) }
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-faults-\(UUID().uuidString.prefix(6)).yaml")
        try Data("crashOnStrat: []\n".utf8).write(to: bad)
        defer { try? FileManager.default.removeItem(at: bad) }
        #expect(throws: SimError.self) { try FaultPlan.load(path: bad.path) }
        do {
            _ = try FaultPlan.load(path: bad.path)
        } catch {
            #expect("\(error)".contains("unknown fault `crashOnStrat`"))
        }
    }
}

/// Counts keys in a Redis over the real redis-cli.
enum RedisKeys {
    static func count(host: String, port: Int, pattern: String) async throws -> Int {
        // Off the cooperative pool, which the sim serving this test shares.
        let result = try await ProcessRunner.run(
            "/usr/bin/redis-cli", arguments: ["-h", host, "-p", String(port), "--scan", "--pattern", pattern],
            environment: ProcessInfo.processInfo.environment, timeout: .seconds(60))
        guard result.succeeded else {
            throw FixtureError("redis-cli --scan on \(host):\(port) failed: \(result.stderrExcerpt())")
        }
        return String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").count
    }
}
