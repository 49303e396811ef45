import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KVerifyTestSupport
import KubeModel
import Testing
@testable import KubeSim

/// exec, attach (through `kubectl run -i`) and port-forward, driven by the real kubectl 1.32 over its default
/// WebSocket transports, against pods that are real processes.
@Suite("kubectl exec, run -i and port-forward against the sim", .serialized)
struct StreamingAcceptanceTests {
    /// Its own names, labels and ports (not manifests/'s): a Redis pod behind a Service on a different port, an HTTP
    /// server pod (python's http.server) behind a Service, and a Deployment of the same server.
    static let lab = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: stream-lab}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: kv-store, namespace: stream-lab, labels: {tier: kv, lab: streaming}}
        spec:
          containers:
          - name: kv
            image: redis:7-alpine
            ports: [{containerPort: 6379, name: resp}]
            readinessProbe: {tcpSocket: {port: resp}, periodSeconds: 1}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: kv, namespace: stream-lab}
        spec:
          selector: {tier: kv}
          ports: [{port: 7000, targetPort: resp}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web-lab, namespace: stream-lab, labels: {tier: web, lab: streaming}}
        spec:
          containers:
          - name: http
            image: busybox:1.36
            command: [python3, -m, http.server, "8181", --bind, 0.0.0.0]
            ports: [{containerPort: 8181, name: web}]
            readinessProbe: {tcpSocket: {port: web}, periodSeconds: 1}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web-front, namespace: stream-lab}
        spec:
          selector: {tier: web}
          ports: [{port: 80, targetPort: web}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: line-reader, namespace: stream-lab, labels: {tier: batch}}
        spec:
          restartPolicy: Never
          containers:
          - name: reader
            image: busybox:1.36
            stdin: true
            stdinOnce: true
            command: [sh, -c, 'echo ready; while read line; do echo "got $line"; done; echo "stdin closed"']
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web-fleet, namespace: stream-lab}
        spec:
          replicas: 1
          selector: {matchLabels: {tier: web-fleet}}
          template:
            metadata: {labels: {tier: web-fleet}}
            spec:
              containers:
              - name: http
                image: busybox:1.36
                command: [python3, -m, http.server, "8282", --bind, 0.0.0.0]
                ports: [{containerPort: 8282}]
                readinessProbe: {tcpSocket: {port: 8282}, periodSeconds: 1}
        """

    /// Applies the lab and waits until its pods are Ready.
    static func withLab<T: Sendable>(_ body: (SimulatedCluster, Kubectl) async throws -> T) async throws -> T {
        try await withSim(nodes: 2) { sim, kubectl in
            let applied = try await kubectl("apply", "--server-side", "-f", "-", stdin: lab)
            try #require(applied.status == 0, "\(applied)")
            let ready = try await kubectl("wait", "-n", "stream-lab", "--for=condition=Ready", "pod", "--all", "--timeout=60s", timeout: .seconds(70))
            try #require(ready.status == 0, "\(ready)")
            return try await body(sim, kubectl)
        }
    }

    @Test("kubectl exec runs the command in the container's environment: stdout, stderr and the exit code come back")
    func execExitCode() async throws {
        try await Self.withLab { _, kubectl in
            let result = try await kubectl("exec", "-n", "stream-lab", "kv-store", "--", "sh", "-c", "echo ok; echo err >&2; exit 3")
            #expect(result.status == 3, "\(result)")
            #expect(result.stdout == "ok\n", "\(result)")
            #expect(result.stderr.contains("err\n"), "\(result)")
            #expect(result.stderr.contains("command terminated with exit code 3"), "\(result)")

            // The container's own environment: its hostname, its pod address (the network shim's), its image's binaries.
            let podIP = try await kubectl("get", "pod", "-n", "stream-lab", "kv-store", "-o", "jsonpath={.status.podIP}").stdout
            let environment = try await kubectl("exec", "-n", "stream-lab", "kv-store", "-c", "kv", "--", "sh", "-c",
                                                "echo $HOSTNAME $KVERIFY_POD_IP; redis-cli -h kv -p 7000 ping")
            #expect(environment.status == 0, "\(environment)")
            #expect(environment.stdout == "kv-store \(podIP)\nPONG\n", "\(environment)")
        }
    }

    @Test("kubectl exec -i pipes stdin through to the process and ends it with EOF")
    func execStdin() async throws {
        try await Self.withLab { _, kubectl in
            let text = (1...200).map { "line \($0) of the piped input" }.joined(separator: "\n") + "\n"
            let result = try await kubectl("exec", "-i", "-n", "stream-lab", "web-lab", "--", "cat", stdin: text)
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout == text)
            let counted = try await kubectl("exec", "-i", "-n", "stream-lab", "web-lab", "--", "wc", "-l", stdin: text)
            #expect(counted.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "200", "\(counted)")
        }
    }

    @Test("kubectl run --rm -i runs redis-cli against a Service, prints PONG, and the pod is gone afterwards")
    func runInteractive() async throws {
        try await Self.withLab { _, kubectl in
            // redis-cli with no command reads its commands from stdin, so PONG can only come through the attach:
            // the container waits on its stdin until kubectl attaches and sends PING. (`redis-cli ping` would race the
            // attach, on a real cluster too: a container that ends first leaves kubectl to fall back to its logs.)
            let result = try await kubectl("run", "kv-ping", "-n", "stream-lab", "--image=redis:7-alpine", "--rm", "-i", "--restart=Never",
                                           "--", "redis-cli", "-h", "kv", "-p", "7000", stdin: "PING\n", timeout: .seconds(90))
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("PONG"), "\(result)")
            #expect(result.stdout.contains("pod \"kv-ping\" deleted"), "\(result)")
            #expect(!result.stderr.contains("falling back to streaming logs"), "\(result)")
            let gone = try await kubectl("wait", "-n", "stream-lab", "--for=delete", "pod/kv-ping", "--timeout=30s")
            #expect(gone.status == 0, "\(gone)")
            let lookup = try await kubectl("get", "pod", "-n", "stream-lab", "kv-ping")
            #expect(lookup.stderr.contains("NotFound"), "\(lookup)")

            // A failing command's exit code is kubectl's exit code.
            let failing = try await kubectl("run", "kv-fail", "-n", "stream-lab", "--image=redis:7-alpine", "--rm", "-i", "--restart=Never",
                                            "--", "sh", "-c", "echo about to fail; exit 4", timeout: .seconds(90))
            #expect(failing.status == 4, "\(failing)")
            #expect(failing.stdout.contains("about to fail"), "\(failing)")
        }
    }

    @Test("kubectl attach -i feeds a stdin: true container and shows its output; stdinOnce ends its stdin with kubectl's")
    func attachStdin() async throws {
        try await Self.withLab { _, kubectl in
            let result = try await kubectl("attach", "-i", "-n", "stream-lab", "line-reader", stdin: "first\nsecond\n")
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout == "ready\ngot first\ngot second\nstdin closed\n", "\(result)")
            let phase = try await kubectl("wait", "-n", "stream-lab", "--for=jsonpath={.status.phase}=Succeeded", "pod/line-reader", "--timeout=30s")
            #expect(phase.status == 0, "\(phase)")
        }
    }

    @Test("an exec whose client goes away is killed, and so is one still running when its pod is deleted")
    func execCleanup() async throws {
        try await Self.withLab { _, kubectl in
            let marker = String(Int.random(in: 900_000..<999_999))
            let client = try kubectl.background(["exec", "-n", "stream-lab", "web-lab", "--", "sleep", marker])
            #expect(await eventually { Self.processRuns("bin/sleep\0\(marker)") }, "\(client.logTail())")
            client.stop(signal: SIGKILL)
            #expect(await eventually { !Self.processRuns("bin/sleep\0\(marker)") })

            let second = String(Int.random(in: 800_000..<899_999))
            let other = try kubectl.background(["exec", "-n", "stream-lab", "web-lab", "--", "sleep", second])
            defer { other.stop() }
            #expect(await eventually { Self.processRuns("bin/sleep\0\(second)") })
            try await kubectl("delete", "pod", "-n", "stream-lab", "web-lab", "--wait=false").expectSuccess()
            #expect(await eventually { !Self.processRuns("bin/sleep\0\(second)") })
            try await other.waitForLog(containing: "command terminated with exit code 137")
        }
    }

    /// Whether a process whose NUL-separated command line contains `needle` runs (read from /proc).
    static func processRuns(_ needle: String) -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.contains { entry in
            guard Int(entry) != nil, let line = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return false }
            return String(decoding: line, as: UTF8.self).contains(needle)
        }
    }

    @Test("kubectl port-forward serves HTTP from a pod, a Service and a Deployment, two connections at once")
    func portForward() async throws {
        try await Self.withLab { _, kubectl in
            let targets = [("pod/web-lab", 8181), ("service/web-front", 80), ("deployment/web-fleet", 8282)]
            var forwarders: [ChildProcess] = []
            defer { for forwarder in forwarders { forwarder.stop() } }
            for (target, remote) in targets {
                let local = try TCPProbe.freePort()
                let forwarder = try kubectl.background(["port-forward", "-n", "stream-lab", target, "\(local):\(remote)"])
                forwarders.append(forwarder)
                try await forwarder.waitForLog(containing: "Forwarding from 127.0.0.1:\(local)", timeout: .seconds(30))
                async let first = Self.get(port: local, path: "/")
                async let second = Self.get(port: local, path: "/?second")
                let codes = try await [first, second]
                #expect(codes == [200, 200], "\(target): \(forwarder.logTail())")
            }
            // The requests reached the pods' own servers (python logs each one).
            let served = try await kubectl("logs", "-n", "stream-lab", "web-lab")
            #expect(served.stdout.contains("\"GET /?second HTTP/1.0\" 200"), "\(served)")
        }
    }

    @Test("kubectl port-forward to a port where nothing listens reports the refused connection, as kubectl does on a cluster")
    func portForwardRefused() async throws {
        try await Self.withLab { _, kubectl in
            let local = try TCPProbe.freePort()
            let forwarder = try kubectl.background(["port-forward", "-n", "stream-lab", "pod/web-lab", "\(local):9999"])
            defer { forwarder.stop() }
            try await forwarder.waitForLog(containing: "Forwarding from 127.0.0.1:\(local)", timeout: .seconds(30))
            await #expect(throws: (any Error).self) { _ = try await Self.get(port: local, path: "/") }
            try await forwarder.waitForLog(containing: "connect: connection refused", timeout: .seconds(30))
            let log = forwarder.logTail(lines: 40)
            #expect(log.contains("an error occurred forwarding \(local) -> 9999: error forwarding port 9999 to pod web-lab"), "\(log)")
        }
    }

    @Test("with KUBECTL_PORT_FORWARD_WEBSOCKETS=false kubectl port-forward takes the legacy SPDY upgrade, which serves too")
    func portForwardLegacySPDY() async throws {
        try await Self.withLab { _, kubectl in
            var legacy = kubectl
            legacy.extraEnvironment = ["KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"]
            let local = try TCPProbe.freePort()
            let forwarder = try legacy.background(["port-forward", "-n", "stream-lab", "pod/web-lab", "\(local):8181"])
            defer { forwarder.stop() }
            try await forwarder.waitForLog(containing: "Forwarding from 127.0.0.1:\(local)", timeout: .seconds(30))
            async let first = Self.get(port: local, path: "/?legacy-1")
            async let second = Self.get(port: local, path: "/?legacy-2")
            let codes = try await [first, second]
            #expect(codes == [200, 200], "\(forwarder.logTail())")
        }
    }

    @Test("exec over SPDY, into a pod that never started, with a tty, into a missing container or of a missing program: a Status kubectl prints, not a hang")
    func refusals() async throws {
        try await Self.withLab { _, kubectl in
            var legacy = kubectl
            legacy.extraEnvironment = ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"]
            let spdyExec = try await legacy("exec", "-n", "stream-lab", "web-lab", "--", "true")
            #expect(spdyExec.status == 1)
            #expect(spdyExec.stderr.contains("serves pods/exec only over a WebSocket"), "\(spdyExec)")
            #expect(spdyExec.stderr.contains("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"), "\(spdyExec)")
            let allowed = try await kubectl("auth", "can-i", "create", "pods", "--subresource=exec", "-n", "stream-lab")
            #expect(allowed.stdout == "yes\n", "\(allowed)")

            // A pod that never starts (its image is unknown to the runtime map) has no container to exec into.
            try await kubectl("run", "never-runs", "-n", "stream-lab", "--image=nowhere.example/absent:1", "--restart=Never").expectSuccess()
            let pending = try await kubectl("exec", "-n", "stream-lab", "never-runs", "--", "true")
            #expect(pending.status == 1)
            #expect(pending.stderr.contains("pod never-runs is not running (phase Pending)"), "\(pending)")

            // kubectl asks for a tty only with a terminal on its stdin: `script` gives it one.
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/script") {
                let command = "\(Kubectl.path) --kubeconfig \(kubectl.kubeconfig) exec -it -n stream-lab web-lab -- true"
                let tty = try await Self.runInTerminal(command, environment: kubectl.environment)
                #expect(tty.status == 1, "\(tty.output)")
                #expect(tty.output.contains("tty is not supported"), "\(tty.output)")
            }

            let missing = try await kubectl("exec", "-n", "stream-lab", "web-lab", "-c", "nope", "--", "true")
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("nope"), "\(missing)")
            let notFound = try await kubectl("exec", "-n", "stream-lab", "web-lab", "--", "/no/such/program")
            #expect(notFound.status != 0)
            #expect(notFound.stderr.contains("executable file not found"), "\(notFound)")
        }
    }

    /// Runs a shell command under `script`, so its stdin is a terminal; its exit status and everything it printed.
    static func runInTerminal(_ command: String, environment: [String: String]) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
                    process.arguments = ["-qec", command, "/dev/null"]
                    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
                    let output = Pipe()
                    process.standardOutput = output
                    process.standardError = output
                    process.standardInput = FileHandle.nullDevice
                    try process.run()
                    let data = output.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
                })
            }.start()
        }
    }

    /// One HTTP/1.0 GET on a thread of its own (a blocking socket must not hold the cooperative pool the sim uses).
    static func get(port: Int, path: String) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try TCPProbe.httpGet(port: port, path: path) }) }.start()
        }
    }
}
