import Foundation
import KVerifyTestSupport
import KubeModel
import Testing
@testable import KubeSim
@testable import SimStore

/// In-cluster clients as on a real cluster: every namespace's `default` ServiceAccount, its token, the cluster CA
/// and the namespace mounted in each pod, `KUBERNETES_SERVICE_HOST/PORT` naming the `kubernetes` Service, the API
/// server accepting the token and RBAC deciding; and a real Prometheus (Go, client-go) using all of that unchanged.
@Suite("sim in-cluster clients", .serialized)
struct InClusterClientTests {
    /// A container that prints what the kubelet mounted and the API server's variables, then exits.
    static let reader = """
        apiVersion: v1
        kind: Pod
        metadata: {name: reader}
        spec:
          restartPolicy: Never
          containers:
          - name: files
            image: busybox:1.36
            command: ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace"]
          - name: env
            image: busybox:1.36
            command: ["sh", "-c", "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"]
        """

    static let podReader = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: pod-reader}
        rules:
        - apiGroups: [""]
          resources: ["pods"]
          verbs: ["get", "list", "watch"]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: default-reads-pods}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
        subjects:
        - {kind: ServiceAccount, name: default}
        """

    /// curl against the API server as an in-cluster client would: by the Service address, verifying the CA. Waits
    /// off the cooperative pool (the sim's own tasks share it).
    static func curl(_ url: String, token: String?, ca: String) async throws -> (status: Int, body: String) {
        var arguments = ["-sS", "--max-time", "20", "--cacert", ca, "-w", "\n%{http_code}", url]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: data)
            }
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    @Test("a pod gets the default ServiceAccount's token, the CA and its namespace at the in-cluster path; the token reaches the API server through the kubernetes Service, RBAC decides, and no credentials is 401")
    func serviceAccountCredentials() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            try await kubectl("create", "namespace", "demo").expectSuccess()
            let account = await eventually { (try? sim.store.get(ResourceCatalog.serviceAccounts, namespace: "demo", name: "default")) != nil }
            #expect(account, "the ServiceAccount controller made no default ServiceAccount in demo")
            let applied = try await kubectl("apply", "-n", "demo", "-f", "-", stdin: Self.reader)
            #expect(applied.status == 0, "\(applied)")
            let done = try await kubectl("wait", "-n", "demo", "--for=jsonpath={.status.phase}=Succeeded", "pod/reader", "--timeout=60s", timeout: .seconds(70))
            #expect(done.status == 0, "\(done)")
            #expect(try await kubectl("logs", "-n", "demo", "reader", "-c", "files").stdout == "demo")
            let service = try sim.store.get(ResourceCatalog.all[3], namespace: "default", name: "kubernetes")
            let clusterIP = try #require(service.string(at: "spec", "clusterIP"))
            #expect(try await kubectl("logs", "-n", "demo", "reader", "-c", "env").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(clusterIP):443")

            // The mounted files, read from the pod's volume directory on the host.
            let volume = try #require(FileManager.default.enumerator(atPath: sim.stateDirectory.appendingPathComponent("pods").path)?
                .compactMap { $0 as? String }.first { $0.hasSuffix("/token") && $0.contains("kube-api-access-") })
            let directory = sim.stateDirectory.appendingPathComponent("pods").appendingPathComponent(volume).deletingLastPathComponent()
            let token = try String(contentsOf: directory.appendingPathComponent("token"), encoding: .utf8)
            let ca = directory.appendingPathComponent("ca.crt").path
            #expect(try String(contentsOfFile: ca, encoding: .utf8).contains("BEGIN CERTIFICATE"))

            let pods = "https://\(clusterIP):443/api/v1/namespaces/demo/pods"
            let denied = try await Self.curl(pods, token: token, ca: ca)
            #expect(denied.status == 403, "\(denied)")
            #expect(denied.body.contains("User \\\"system:serviceaccount:demo:default\\\" cannot list resource \\\"pods\\\""), "\(denied.body)")
            #expect(try await Self.curl(pods, token: nil, ca: ca).status == 401)
            #expect(try await Self.curl(pods, token: "not-a-token", ca: ca).status == 401)

            try await kubectl("apply", "-n", "demo", "-f", "-", stdin: Self.podReader).expectSuccess()
            let allowed = try await Self.curl(pods, token: token, ca: ca)
            #expect(allowed.status == 200, "\(allowed)")
            #expect(allowed.body.contains("\"name\":\"reader\""))
            // The Role grants pods only, and only in demo.
            #expect(try await Self.curl("https://\(clusterIP):443/api/v1/namespaces/demo/secrets", token: token, ca: ca).status == 403)
            #expect(try await Self.curl("https://\(clusterIP):443/api/v1/namespaces/default/pods", token: token, ca: ca).status == 403)
            // A token dies with its ServiceAccount.
            try await kubectl("delete", "serviceaccount", "-n", "demo", "default").expectSuccess()
            #expect(try await Self.curl(pods, token: token, ca: ca).status == 401)
        }
    }

    /// Prometheus as the usual in-cluster install: its own ServiceAccount, a Role to read pods, the annotation-driven
    /// scrape config, and pods to scrape (two annotated, one not).
    static let prometheus = """
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: prometheus}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: prometheus}
        rules:
        - apiGroups: [""]
          resources: ["pods", "pods/proxy"]
          verbs: ["get", "list", "watch"]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: prometheus}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: prometheus}
        subjects:
        - {kind: ServiceAccount, name: prometheus}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: prometheus-config}
        data:
          prometheus.yml: |
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            scrape_configs:
            - job_name: kubernetes-pods
              kubernetes_sd_configs:
              - role: pod
                namespaces: {names: [demo]}
              relabel_configs:
              - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape], action: keep, regex: "true"}
              - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path], action: replace, target_label: __metrics_path__, regex: (.+)}
              - {source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port], action: replace, regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: __address__}
              - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: prometheus}
        spec:
          selector: {matchLabels: {app: prometheus}}
          template:
            metadata: {labels: {app: prometheus}}
            spec:
              serviceAccountName: prometheus
              containers:
              - name: prometheus
                image: prom/prometheus:v2.42.0
                args: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]
                ports: [{name: web, containerPort: 9090}]
                readinessProbe: {httpGet: {path: /-/ready, port: 9090}, periodSeconds: 1}
                volumeMounts:
                - {name: config, mountPath: /etc/prometheus}
                - {name: data, mountPath: /prometheus}
              volumes:
              - {name: config, configMap: {name: prometheus-config}}
              - {name: data, emptyDir: {}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: prometheus}
        spec:
          selector: {app: prometheus}
          ports: [{name: web, port: 9090, targetPort: web}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: exporter}
        spec:
          replicas: 2
          selector: {matchLabels: {app: exporter}}
          template:
            metadata:
              labels: {app: exporter}
              annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9100", prometheus.io/path: /metrics}
            spec:
              containers:
              - {name: exporter, image: "kverify/stub-exporter:1", ports: [{containerPort: 9100}]}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: quiet}
        spec:
          selector: {matchLabels: {app: quiet}}
          template:
            metadata: {labels: {app: quiet}}
            spec:
              containers:
              - {name: exporter, image: "kverify/stub-exporter:1", ports: [{containerPort: 9100}]}
        """

    /// Whether the installed Prometheus has Kubernetes service discovery: Debian's package (2.42.0+ds) is built
    /// without it ("field kubernetes_sd_configs not found"), upstream's has it.
    /// One active target of the demo Prometheus: the value of the label asked for, its health and last error.
    struct Target: Equatable { var label: String; var health: String; var lastError: String }

    /// Prometheus' own targets API through the API server's service proxy, read until `done` holds or 60 s pass;
    /// the last answer either way.
    static func activeTargets(_ kubectl: Kubectl, label: String, until done: ([Target]) -> Bool) async throws -> [Target] {
        var targets: [Target] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let answer = try await kubectl("get", "--raw", "/api/v1/namespaces/demo/services/prometheus:web/proxy/api/v1/targets?state=active")
            if answer.status == 0, let json = try? JSONDecoder().decode(JSONValue.self, from: Data(answer.stdout.utf8)) {
                targets = (json.value(at: ["data", "activeTargets"])?.arrayValue ?? []).map {
                    Target(label: $0.value(at: ["labels", label])?.stringValue ?? "", health: $0["health"]?.stringValue ?? "",
                           lastError: $0["lastError"]?.stringValue ?? "")
                }
                if done(targets) { break }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        return targets
    }

    static let hasKubernetesSD: Bool = {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-sd-\(UUID().uuidString.prefix(8)).yml")
        defer { try? FileManager.default.removeItem(at: config) }
        guard FileManager.default.createFile(atPath: config.path, contents: Data("scrape_configs:\n- job_name: x\n  kubernetes_sd_configs:\n  - role: pod\n".utf8)),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "config", "--syntax-only", config.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// The Prometheus Deployment of `prometheus` with a static configuration (what Debian's build can run).
    static func staticPrometheus(config: String) -> String {
        let indented = config.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        let parts = prometheus.components(separatedBy: "---\n")
        let configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: prometheus-config}\ndata:\n  prometheus.yml: |\n\(indented)\n"
        return parts.map { $0.contains("kind: ConfigMap") ? configMap : $0 }.filter { !$0.contains("metadata: {name: exporter}") && !$0.contains("metadata: {name: quiet}") }
            .joined(separator: "---\n")
    }

    @Test("a real Prometheus (Go, raw syscalls) in a sim pod listens on its pod address, scrapes pods directly, and reads the ServiceAccount token and CA at the in-cluster path to scrape through the kubernetes Service; RBAC refuses what its Role does not grant")
    func prometheusUsesInClusterCredentials() async throws {
        // Known gap: the sim cannot map a volume at a top-level path the host lacks (`/prometheus`, the image's
        // storage path), so Prometheus writes the host's. Removed afterwards when this test made it.
        let storage = "/prometheus"
        let hadStorage = FileManager.default.fileExists(atPath: storage)
        defer { if !hadStorage { try? FileManager.default.removeItem(atPath: storage) } }
        try await withSim(nodes: 2) { sim, kubectl in
            try await kubectl("create", "namespace", "demo").expectSuccess()
            let exporters = Self.prometheus.components(separatedBy: "---\n").filter { $0.contains("metadata: {name: exporter}") }.joined()
            try await kubectl("apply", "-n", "demo", "-f", "-", stdin: exporters).expectSuccess()
            let rollout = try await kubectl("rollout", "status", "-n", "demo", "deploy/exporter", "--timeout=60s", timeout: .seconds(70))
            #expect(rollout.status == 0, "\(rollout)")
            let rows = try await kubectl("get", "pods", "-n", "demo", "-l", "app=exporter", "-o",
                                         "jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{\"\\n\"}{end}")
                .stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(rows.count == 2)
            let clusterIP = try #require(try sim.store.get(ResourceCatalog.all[3], namespace: "default", name: "kubernetes").string(at: "spec", "clusterIP"))
            let pod = try #require(rows.first?.first)
            let credentials = "authorization: {credentials_file: /var/run/secrets/kubernetes.io/serviceaccount/token}\n"
                + "  tls_config: {ca_file: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt}\n"
            let config = """
                global: {scrape_interval: 1s}
                scrape_configs:
                - job_name: direct
                  static_configs: [{targets: [\(rows.map { "\"\($0[1]):9100\"" }.joined(separator: ", "))]}]
                - job_name: through-apiserver
                  scheme: https
                  metrics_path: /api/v1/namespaces/demo/pods/\(pod):9100/proxy/metrics
                  \(credentials)  static_configs: [{targets: ["\(clusterIP):443"]}]
                - job_name: not-granted
                  scheme: https
                  metrics_path: /api/v1/namespaces/demo/secrets
                  \(credentials)  static_configs: [{targets: ["\(clusterIP):443"]}]
                """
            let applied = try await kubectl("apply", "-n", "demo", "-f", "-", stdin: Self.staticPrometheus(config: config))
            #expect(applied.status == 0, "\(applied)")
            let ready = try await kubectl("rollout", "status", "-n", "demo", "deploy/prometheus", "--timeout=60s", timeout: .seconds(70))
            #expect(ready.status == 0, "\(ready)")

            let targets = try await Self.activeTargets(kubectl, label: "job") { targets in
                targets.count == 4 && !targets.contains { $0.health == "unknown" }
            }
            let byJob = Dictionary(grouping: targets, by: \.label)
            #expect(byJob["direct"]?.count == 2 && byJob["direct"]!.allSatisfy { $0.health == "up" && $0.lastError.isEmpty }, "\(targets)")
            #expect(byJob["through-apiserver"]?.first?.health == "up", "\(targets)")
            #expect(byJob["through-apiserver"]?.first?.lastError == "", "\(targets)")
            #expect(byJob["not-granted"]?.first?.health == "down", "\(targets)")
            #expect(byJob["not-granted"]?.first?.lastError.contains("403") == true, "\(targets)")
        }
    }

    @Test("a real Prometheus in a sim pod lists and watches pods with its ServiceAccount (client-go in-cluster config, unchanged) and scrapes exactly the annotated pods, all up",
          .enabled(if: hasKubernetesSD, "the installed Prometheus has no kubernetes_sd_configs (Debian builds it without)"))
    func prometheusScrapesAnnotatedPods() async throws {
        try await withSim(nodes: 2) { sim, kubectl in
            try await kubectl("create", "namespace", "demo").expectSuccess()
            let applied = try await kubectl("apply", "-n", "demo", "-f", "-", stdin: Self.prometheus)
            #expect(applied.status == 0, "\(applied)")
            for deployment in ["prometheus", "exporter", "quiet"] {
                let rollout = try await kubectl("rollout", "status", "-n", "demo", "deploy/\(deployment)", "--timeout=90s", timeout: .seconds(100))
                #expect(rollout.status == 0, "\(rollout)")
            }
            let exporters = Set(try await kubectl("get", "pods", "-n", "demo", "-l", "app=exporter", "-o", "jsonpath={.items[*].metadata.name}")
                .stdout.split(separator: " ").map(String.init))
            #expect(exporters.count == 2)

            // Prometheus' own API through the API server's service proxy, until discovery and one scrape are done.
            let targets = try await Self.activeTargets(kubectl, label: "pod") { targets in
                targets.count == exporters.count && targets.allSatisfy { $0.health == "up" }
            }
            #expect(Set(targets.map(\.label)) == exporters, "\(targets)")
            #expect(targets.allSatisfy { $0.health == "up" && $0.lastError.isEmpty }, "\(targets)")
            let up = try await kubectl("get", "--raw", "/api/v1/namespaces/demo/services/prometheus:web/proxy/api/v1/query?query=sum(up)")
            #expect(up.stdout.contains("\"2\""), "\(up)")
            let log = try await kubectl("logs", "-n", "demo", "deploy/prometheus")
            #expect(!log.stdout.contains("level=error") && !log.stderr.contains("level=error"), "\(log.stdout.suffix(2000))")
        }
    }
}
