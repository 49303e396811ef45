import Foundation
import KVerifyTestSupport
import KubeModel
import Testing
@testable import KubeSim

/// Issue #14's done-when: a deployment-verification flow replayed with the real kubectl and helm against a 3-node
/// sim, three times in a row, with fixtures of its own (not manifests/'s names and labels), and no sim process left
/// afterwards.
@Suite("a verification flow replayed with the real kubectl and helm", .serialized)
struct FlowReplayTests {
    /// The fixtures. Every container carries `FLOW_REPLAY_RUN=<run>` in its environment, inherited by everything it
    /// starts, so the processes of one run can be found in /proc after the sim stopped.
    static func fixtures(run: String) -> String {
        let env = """
                - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
                - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
                - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
                - {name: EXPORTER_MODE, value: sidecar}
                - {name: REDIS_ENABLED, value: "true"}
                - {name: REDIS_HOST, value: relay-cache}
                - {name: REDIS_PORT, value: "6390"}
                - {name: REDIS_KEY_PREFIX, value: relay-$(POD_NAME)}
                - {name: REDIS_TTL_SECONDS, value: "300"}
                - {name: PROMETHEUS_MULTIPROC_DIR, value: ""}
                - {name: PROMETHEUS_METRICS_PORT, value: "9191"}
                - {name: PROMETHEUS_BIND_ADDRESS, value: 0.0.0.0}
                - {name: FLOW_REPLAY_RUN, value: "\(run)"}
        """
        return """
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata: {name: relay-cache-data, namespace: relay}
            spec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 100Mi}}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: relay-cache, namespace: relay, labels: {relay: cache}}
            spec:
              replicas: 1
              selector: {matchLabels: {relay: cache}}
              template:
                metadata: {labels: {relay: cache}}
                spec:
                  volumes: [{name: data, persistentVolumeClaim: {claimName: relay-cache-data}}]
                  containers:
                  - name: redis
                    image: redis:7-alpine
                    args: [--port, "6390", --appendonly, "no"]
                    env: [{name: FLOW_REPLAY_RUN, value: "\(run)"}]
                    ports: [{containerPort: 6390, name: resp}]
                    volumeMounts: [{name: data, mountPath: /data}]
                    readinessProbe: {tcpSocket: {port: resp}, periodSeconds: 1}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: relay-cache, namespace: relay}
            spec:
              type: ClusterIP
              selector: {relay: cache}
              ports: [{port: 6390, targetPort: resp}]
            ---
            apiVersion: apps/v1
            kind: DaemonSet
            metadata: {name: relay-edge, namespace: relay, labels: {relay: edge}}
            spec:
              selector: {matchLabels: {relay: edge}}
              template:
                metadata: {labels: {relay: edge}}
                spec:
                  hostNetwork: true
                  dnsPolicy: ClusterFirstWithHostNet
                  volumes: [{name: tmp, emptyDir: {}}, {name: multiproc, emptyDir: {}}]
                  containers:
                  - name: web
                    image: kverify-demo-app:dev
                    workingDir: /tmp
                    command: [gunicorn, -c, /app/gunicorn_conf.py, --pythonpath, /app, "app:application"]
                    env:
            \(env)
                    - {name: APP_BIND, value: "0.0.0.0:8090"}
                    - {name: GUNICORN_WORKERS, value: "2"}
                    ports: [{name: http, containerPort: 8090, hostPort: 8090}]
                    readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 1}
                    volumeMounts: [{name: tmp, mountPath: /tmp}]
                  - name: exporter
                    image: kverify-demo-app:dev
                    command: [python, /app/sidecar.py]
                    env:
            \(env)
                    ports: [{name: metrics, containerPort: 9191}]
                    readinessProbe: {httpGet: {path: /metrics, port: metrics}, periodSeconds: 1}
                    volumeMounts: [{name: multiproc, mountPath: /tmp/prometheus_multiproc}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: relay-web, namespace: relay}
            spec:
              selector: {relay: edge}
              ports: [{port: 80, targetPort: http}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: relay-metrics, namespace: relay}
            spec:
              selector: {relay: edge}
              ports: [{port: 9100, targetPort: metrics}]
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: relay-edge-ingress, namespace: relay}
            spec:
              podSelector: {matchLabels: {relay: edge}}
              policyTypes: [Ingress]
              ingress: [{ports: [{port: 8090}, {port: 9191}]}]
            """
    }

    /// Pids of processes whose environment has `FLOW_REPLAY_RUN=<run>` (from /proc).
    static func processes(ofRun run: String) -> [String] {
        let needle = "FLOW_REPLAY_RUN=\(run)"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { entry in
            guard Int(entry) != nil, let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { return false }
            return String(decoding: environment, as: UTF8.self).split(separator: "\0").contains { $0 == needle }
        }
    }

    static func get(port: Int, path: String) async throws -> (status: Int, text: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try TCPProbe.httpResponse(port: port, path: path) }) }.start()
        }
    }

    /// A port-forward to `target` for `body`, stopped afterwards.
    static func forwarding<T>(_ kubectl: Kubectl, _ target: String, remote: Int, _ body: (Int) async throws -> T) async throws -> T {
        let local = try TCPProbe.freePort()
        let forwarder = try kubectl.background(["port-forward", "-n", "relay", target, "\(local):\(remote)"])
        defer { forwarder.stop() }
        try await forwarder.waitForLog(containing: "Forwarding from 127.0.0.1:\(local)", timeout: .seconds(30))
        return try await body(local)
    }

    /// One replay of the flow; every step checks the value the real clients print. Returns the pids the run's pods
    /// had once Ready.
    static func replay(_ kubectl: Kubectl, run: String) async throws -> [String] {
        let manifests = fixtures(run: run)
        // The namespace is not in the file: `delete -f` of a file with its namespace races the namespace controller
        // (NotFound for objects it removed first), on a real cluster as here.
        try #require(try await kubectl("create", "namespace", "relay").status == 0)
        let applied = try await kubectl("apply", "-f", "-", stdin: manifests)
        try #require(applied.status == 0, "\(applied)")
        for label in ["relay=cache", "relay=edge"] {
            let ready = try await kubectl("wait", "-n", "relay", "-l", label, "--for=condition=Ready", "pod", "--timeout=120s", timeout: .seconds(130))
            try #require(ready.status == 0, "\(label): \(ready)")
        }
        let running = processes(ofRun: run)
        #expect(running.count >= 3, "the run's processes: \(running)")
        let ping = try await kubectl("run", "relay-ping", "-n", "relay", "--image=redis:7-alpine", "--rm", "-i", "--restart=Never",
                                     "--", "redis-cli", "-h", "relay-cache", "-p", "6390", "ping", timeout: .seconds(90))
        #expect(ping.status == 0 && ping.stdout.contains("PONG"), "\(ping)")

        let numbers = try await kubectl("get", "ds", "relay-edge", "-n", "relay", "-o", "jsonpath={.status.numberReady}/{.status.desiredNumberScheduled}")
        let parts = numbers.stdout.split(separator: "/")
        #expect(parts.count == 2 && parts[0] == parts[1] && parts[0] != "0", "\(numbers)")

        try await forwarding(kubectl, "service/relay-web", remote: 80) { port in
            let health = try await get(port: port, path: "/health")
            #expect(health.status == 200, "\(health.text)")
            var codes: [Int] = []
            for index in 0..<20 { codes.append(try await get(port: port, path: "/?request=\(index)").status) }
            #expect(codes == Array(repeating: 200, count: 20))
        }
        try await forwarding(kubectl, "service/relay-metrics", remote: 9100) { port in
            let metrics = try await get(port: port, path: "/metrics")
            #expect(metrics.status == 200)
            let total = metrics.text.split(separator: "\n")
                .filter { $0.hasPrefix("gunicorn_worker_requests_total") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                .reduce(0, +)
            #expect(total > 0, "\(metrics.text.prefix(2000))")
        }

        let exec = try await kubectl("exec", "-n", "relay", "ds/relay-edge", "-c", "web", "--", "sh", "-c", "echo ok")
        #expect(exec.status == 0 && exec.stdout == "ok\n", "\(exec)")
        let logs = try await kubectl("logs", "-n", "relay", "-l", "relay=edge", "-c", "web", "--tail=200")
        #expect(logs.status == 0 && !logs.stdout.isEmpty, "\(logs)")

        let scan = try await kubectl("run", "relay-scan", "-n", "relay", "--image=redis:7-alpine", "--rm", "-i", "--restart=Never",
                                     "--", "redis-cli", "-h", "relay-cache", "-p", "6390", "--scan", timeout: .seconds(90))
        let keys = scan.stdout.split(separator: "\n").filter { $0.hasPrefix("relay-") }
        #expect(scan.status == 0 && !keys.isEmpty, "\(scan)")

        let deleted = try await kubectl("delete", "-f", "-", "--wait", "--timeout=120s", stdin: manifests, timeout: .seconds(130))
        #expect(deleted.status == 0, "\(deleted)")
        let remaining = try await kubectl("get", "deployments,daemonsets,services,pvc,networkpolicies", "-n", "relay", "-o", "name")
        #expect(remaining.status == 0 && remaining.stdout.isEmpty, "\(remaining)")
        let namespace = try await kubectl("delete", "namespace", "relay", "--wait", "--timeout=60s", timeout: .seconds(70))
        #expect(namespace.status == 0, "\(namespace)")

        try await ClientBodyAcceptanceTests.withChart { chart in
            let helm = kubectl.helm()
            let installed = try await helm("install", "hlab", chart, "-n", "relay-helm", "--create-namespace", "--wait", "--timeout", "90s",
                                           timeout: .seconds(100))
            try #require(installed.status == 0, "\(installed)")
            let upgraded = try await helm("upgrade", "hlab", chart, "-n", "relay-helm", "--set", "replicas=2", "--wait", "--timeout", "90s",
                                          timeout: .seconds(100))
            #expect(upgraded.status == 0 && upgraded.stdout.contains("REVISION: 2"), "\(upgraded)")
            let tested = try await helm("test", "hlab", "-n", "relay-helm", "--timeout", "60s", timeout: .seconds(70))
            #expect(tested.status == 0 && tested.stdout.contains("Succeeded"), "\(tested)")
            let uninstalled = try await helm("uninstall", "hlab", "-n", "relay-helm", "--wait", "--timeout", "60s", timeout: .seconds(70))
            #expect(uninstalled.status == 0, "\(uninstalled)")
            let left = try await kubectl("get", "deployments,services,configmaps,secrets", "-n", "relay-helm", "-o", "name")
            #expect(left.stdout.split(separator: "\n").filter { !$0.contains("kube-root-ca.crt") }.isEmpty, "\(left)")
        }
        return running
    }

    @Test("apply, wait, run -i, port-forward, metrics, exec, logs, a Redis scan, delete --wait and helm's lifecycle, three times; no process left")
    func replayThreeTimes() async throws {
        for round in 1...3 {
            let run = "round\(round)-\(UUID().uuidString.prefix(8))"
            let running = try await withSim(nodes: 3) { _, kubectl in try await Self.replay(kubectl, run: run) }
            // The sim's stop() reaps: none of the run's processes (the pods' and everything they started, seen
            // running once Ready: `running`) is left.
            let left = Self.processes(ofRun: run)
            #expect(left.isEmpty, "round \(round): processes left: \(left) (seen running: \(running))")
        }
    }
}
