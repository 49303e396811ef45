import Foundation
import KVerifyTestSupport
import KubeModel
import Testing
@testable import KubeSim

/// Request bodies as the real clients send them: kubectl's typed clients (protobuf), client-side `kubectl apply`
/// (strategic merge patches computed from the last-applied annotation) and helm 3's install, upgrade, test and
/// uninstall (protobuf release Secrets and DeleteOptions, three-way patches, hooks).
@Suite("request bodies of the real kubectl and helm against the sim", .serialized)
struct ClientBodyAcceptanceTests {
    static func json(_ result: Kubectl.Result) throws -> JSONValue {
        try #require(result.status == 0, "\(result)")
        return try JSONValue.parse(json: Data(result.stdout.utf8))
    }

    @Test("kubectl create deployment, service, serviceaccount, role, rolebinding, clusterrole and clusterrolebinding send protobuf bodies the sim decodes into the objects kubectl meant")
    func createSendsProtobuf() async throws {
        try await withSim(nodes: 1) { _, kubectl in
            try #require(try await kubectl("create", "namespace", "pb-lab").status == 0)
            let created = try await kubectl("create", "deployment", "pb-web", "-n", "pb-lab", "--image=busybox:1.36",
                                            "--replicas=2", "--port=8123", "--", "python3", "-m", "http.server", "8123")
            #expect(created.status == 0, "\(created)")
            let deployment = try Self.json(try await kubectl("get", "deployment", "pb-web", "-n", "pb-lab", "-o", "json"))
            #expect(deployment.value(at: ["spec", "replicas"]) == 2)
            #expect(deployment.value(at: ["spec", "selector", "matchLabels"]) == ["app": "pb-web"])
            #expect(deployment.value(at: ["spec", "template", "metadata", "labels"]) == ["app": "pb-web"])
            let container = deployment.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first
            #expect(container?["name"] == "busybox")
            #expect(container?["image"] == "busybox:1.36")
            #expect(container?["command"] == ["python3", "-m", "http.server", "8123"])
            // (The sim does not default a port's protocol to TCP, as the real server would.)
            #expect(container?["ports"] == [["containerPort": 8123]])
            // The controllers act on it as on a JSON-created one: two pods come up Ready.
            let rolled = try await kubectl("rollout", "status", "-n", "pb-lab", "deployment/pb-web", "--timeout=60s", timeout: .seconds(70))
            #expect(rolled.status == 0, "\(rolled)")

            let service = try await kubectl("create", "service", "nodeport", "pb-front", "-n", "pb-lab", "--tcp=80:8123")
            #expect(service.status == 0, "\(service)")
            let stored = try Self.json(try await kubectl("get", "service", "pb-front", "-n", "pb-lab", "-o", "json"))
            #expect(stored.value(at: ["spec", "type"]) == "NodePort")
            let port = stored.value(at: ["spec", "ports"])?.arrayValue?.first
            #expect(port?["port"] == 80)
            #expect(port?["targetPort"] == 8123)
            #expect(port?["nodePort"]?.intValue.map { $0 >= 30000 } == true, "\(String(describing: port))")

            let account = try await kubectl("create", "serviceaccount", "pb-robot", "-n", "pb-lab")
            #expect(account.status == 0, "\(account)")

            // RBAC: the core group is the empty string, an element a list must keep.
            let role = try await kubectl("create", "role", "pb-reader", "-n", "pb-lab", "--verb=get,list", "--resource=pods,deployments.apps",
                                         "--resource-name=pb-web")
            #expect(role.status == 0, "\(role)")
            let rules = try Self.json(try await kubectl("get", "role", "pb-reader", "-n", "pb-lab", "-o", "json")).value(at: ["rules"])
            #expect(rules == [["apiGroups": [""], "resources": ["pods"], "resourceNames": ["pb-web"], "verbs": ["get", "list"]],
                              ["apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["pb-web"], "verbs": ["get", "list"]]],
                    "\(String(describing: rules))")
            let binding = try await kubectl("create", "rolebinding", "pb-reads", "-n", "pb-lab", "--role=pb-reader",
                                            "--serviceaccount=pb-lab:pb-robot", "--user=ann")
            #expect(binding.status == 0, "\(binding)")
            let bound = try Self.json(try await kubectl("get", "rolebinding", "pb-reads", "-n", "pb-lab", "-o", "json"))
            #expect(bound.value(at: ["roleRef"]) == ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pb-reader"])
            #expect(bound.value(at: ["subjects"]) == [["apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ann"],
                                                      ["kind": "ServiceAccount", "name": "pb-robot", "namespace": "pb-lab"]],
                    "\(String(describing: bound.value(at: ["subjects"])))")
            let clusterRole = try await kubectl("create", "clusterrole", "pb-nodes", "--verb=get,watch", "--resource=nodes")
            #expect(clusterRole.status == 0, "\(clusterRole)")
            let clusterRules = try Self.json(try await kubectl("get", "clusterrole", "pb-nodes", "-o", "json")).value(at: ["rules"])
            #expect(clusterRules == [["apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "watch"]]], "\(String(describing: clusterRules))")
            let clusterBinding = try await kubectl("create", "clusterrolebinding", "pb-nodes", "--clusterrole=pb-nodes", "--group=ops")
            #expect(clusterBinding.status == 0, "\(clusterBinding)")
            let clusterBound = try Self.json(try await kubectl("get", "clusterrolebinding", "pb-nodes", "-o", "json"))
            #expect(clusterBound.value(at: ["roleRef", "kind"]) == "ClusterRole")
            #expect(clusterBound.value(at: ["subjects"]) == [["apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"]])
        }
    }

    static let appliedV1 = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: csa-web, namespace: csa-lab, labels: {tier: web, stage: one}}
        spec:
          replicas: 1
          selector: {matchLabels: {tier: csa-web}}
          template:
            metadata: {labels: {tier: csa-web}}
            spec:
              volumes: [{name: scratch, emptyDir: {}}, {name: spare, emptyDir: {}}]
              containers:
              - name: http
                image: busybox:1.36
                command: [python3, -m, http.server, "8311", --bind, 0.0.0.0]
                ports: [{containerPort: 8311, name: web}, {containerPort: 9311, name: extra}]
                env: [{name: KEEP_ME, value: "1"}, {name: DROP_ME, value: "2"}]
                volumeMounts: [{name: scratch, mountPath: /scratch}, {name: spare, mountPath: /spare}]
                readinessProbe: {tcpSocket: {port: web}, periodSeconds: 1}
        """

    /// v1 with a field changed in each keyed list, one element removed from each, and a label removed.
    static let appliedV2 = appliedV1
        .replacingOccurrences(of: "labels: {tier: web, stage: one}", with: "labels: {tier: web}")
        .replacingOccurrences(of: "replicas: 1", with: "replicas: 2")
        .replacingOccurrences(of: "volumes: [{name: scratch, emptyDir: {}}, {name: spare, emptyDir: {}}]", with: "volumes: [{name: scratch, emptyDir: {}}]")
        .replacingOccurrences(of: ", {containerPort: 9311, name: extra}", with: "")
        .replacingOccurrences(of: "env: [{name: KEEP_ME, value: \"1\"}, {name: DROP_ME, value: \"2\"}]", with: "env: [{name: KEEP_ME, value: \"changed\"}]")
        .replacingOccurrences(of: ", {name: spare, mountPath: /spare}", with: "")

    @Test("client-side kubectl apply: create with the last-applied annotation, re-apply a changed manifest, removed fields and list elements go, others' fields stay")
    func clientSideApply() async throws {
        try await withSim(nodes: 1) { _, kubectl in
            try #require(try await kubectl("create", "namespace", "csa-lab").status == 0)
            let first = try await kubectl("apply", "-f", "-", stdin: Self.appliedV1)
            try #require(first.status == 0, "\(first)")
            #expect(first.stdout.contains("deployment.apps/csa-web created"), "\(first)")
            let created = try Self.json(try await kubectl("get", "deployment", "csa-web", "-n", "csa-lab", "-o", "json"))
            let annotation = created.value(at: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"])?.stringValue
            let lastApplied = try JSONValue.parse(json: Data((annotation ?? "").utf8))
            #expect(lastApplied.value(at: ["metadata", "labels", "stage"]) == "one")

            // Someone else's change, which a three-way patch keeps.
            try #require(try await kubectl("annotate", "deployment", "csa-web", "-n", "csa-lab", "owner=ops").status == 0)
            let unchanged = try await kubectl("apply", "-f", "-", stdin: Self.appliedV1)
            #expect(unchanged.stdout.contains("deployment.apps/csa-web unchanged"), "\(unchanged)")

            let second = try await kubectl("apply", "-f", "-", stdin: Self.appliedV2)
            try #require(second.status == 0, "\(second)")
            #expect(second.stdout.contains("deployment.apps/csa-web configured"), "\(second)")
            let stored = try Self.json(try await kubectl("get", "deployment", "csa-web", "-n", "csa-lab", "-o", "json"))
            #expect(stored.value(at: ["metadata", "labels"]) == ["tier": "web"])
            #expect(stored.value(at: ["metadata", "annotations", "owner"]) == "ops")
            #expect(stored.value(at: ["spec", "replicas"]) == 2)
            let pod = stored.value(at: ["spec", "template", "spec"])
            #expect(pod?["volumes"] == [["name": "scratch", "emptyDir": [:]]])
            let container = pod?["containers"]?.arrayValue?.first
            #expect(container?["ports"] == [["containerPort": 8311, "name": "web"]])
            #expect(container?["env"] == [["name": "KEEP_ME", "value": "changed"]])
            #expect(container?["volumeMounts"] == [["name": "scratch", "mountPath": "/scratch"]])
            #expect(container?["readinessProbe"]?["tcpSocket"] == ["port": "web"])
            let newAnnotation = stored.value(at: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"])?.stringValue
            #expect(try JSONValue.parse(json: Data((newAnnotation ?? "").utf8)).value(at: ["metadata", "labels", "stage"]) == nil)

            let rolled = try await kubectl("rollout", "status", "-n", "csa-lab", "deployment/csa-web", "--timeout=60s", timeout: .seconds(70))
            #expect(rolled.status == 0, "\(rolled)")
        }
    }

    /// A chart of the test's own (names and ports not the bundled chart's): a ConfigMap, a Deployment of python's
    /// http.server and its Service, and a test hook pod that fetches from the Service by name.
    static let chart: [String: String] = [
        "Chart.yaml": "apiVersion: v2\nname: hlab\nversion: 0.1.0\n",
        "values.yaml": "replicas: 1\ngreeting: hello\n",
        "templates/config.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: hlab-config}
            data: {greeting: {{ .Values.greeting | quote }}}
            """,
        "templates/web.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: hlab-web, labels: {app.kubernetes.io/instance: {{ .Release.Name | quote }}}}
            spec:
              replicas: {{ .Values.replicas }}
              selector: {matchLabels: {hlab: web}}
              template:
                metadata: {labels: {hlab: web}}
                spec:
                  containers:
                  - name: http
                    image: busybox:1.36
                    command: [python3, -m, http.server, "8411", --bind, 0.0.0.0]
                    env: [{name: GREETING, value: {{ .Values.greeting | quote }}}]
                    ports: [{containerPort: 8411, name: web}]
                    readinessProbe: {tcpSocket: {port: web}, periodSeconds: 1}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: hlab-front}
            spec:
              selector: {hlab: web}
              ports: [{port: 80, targetPort: web}]
            """,
        "templates/tests/fetch.yaml": """
            apiVersion: v1
            kind: Pod
            metadata:
              name: hlab-fetch
              annotations: {helm.sh/hook: test, helm.sh/hook-delete-policy: "before-hook-creation,hook-succeeded"}
            spec:
              restartPolicy: Never
              containers:
              - name: fetch
                image: busybox:1.36
                command: [python3, -c, "import urllib.request; print(urllib.request.urlopen('http://hlab-front/').status)"]
            """,
    ]

    /// Writes `chart` into a scratch directory, runs `body` with its path, removes it.
    static func withChart<T>(_ body: (String) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-hlab-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        for (path, text) in chart {
            let file = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
        }
        return try await body(directory.path)
    }

    @Test("helm install --wait, upgrade --wait, test and uninstall --wait against the sim, checked through kubectl")
    func helmLifecycle() async throws {
        try await withSim(nodes: 2) { _, kubectl in
            try await Self.withChart { chart in
                let helm = kubectl.helm()
                let installed = try await helm("install", "hlab", chart, "-n", "helm-lab", "--create-namespace", "--wait", "--timeout", "90s",
                                               timeout: .seconds(100))
                try #require(installed.status == 0, "\(installed)")
                #expect(installed.stdout.contains("STATUS: deployed"), "\(installed)")
                let ready = try await kubectl("get", "deployment", "hlab-web", "-n", "helm-lab", "-o", "jsonpath={.status.readyReplicas}")
                #expect(ready.stdout == "1", "\(ready)")

                let upgraded = try await helm("upgrade", "hlab", chart, "-n", "helm-lab", "--set", "replicas=2,greeting=bonjour", "--wait",
                                              "--timeout", "90s", timeout: .seconds(100))
                try #require(upgraded.status == 0, "\(upgraded)")
                #expect(upgraded.stdout.contains("REVISION: 2"), "\(upgraded)")
                let scaled = try await kubectl("get", "deployment", "hlab-web", "-n", "helm-lab", "-o",
                                               "jsonpath={.status.readyReplicas} {.spec.template.spec.containers[0].env[0].value}")
                #expect(scaled.stdout == "2 bonjour", "\(scaled)")
                let greeting = try await kubectl("get", "configmap", "hlab-config", "-n", "helm-lab", "-o", "jsonpath={.data.greeting}")
                #expect(greeting.stdout == "bonjour", "\(greeting)")

                let tested = try await helm("test", "hlab", "-n", "helm-lab", "--timeout", "60s", timeout: .seconds(70))
                #expect(tested.status == 0, "\(tested)")
                #expect(tested.stdout.contains("Phase:          Succeeded"), "\(tested)")
                let history = try await helm("history", "hlab", "-n", "helm-lab")
                #expect(history.stdout.contains("superseded") && history.stdout.contains("deployed"), "\(history)")

                try await Self.uninstallLeavesNothing(helm, kubectl, release: "hlab", namespace: "helm-lab",
                                                      kinds: "deployments,services,configmaps,secrets", seconds: 60)
                let listed = try await helm("list", "-n", "helm-lab", "-a", "-q")
                #expect(listed.status == 0 && listed.stdout.isEmpty, "\(listed)")
            }
        }
    }

    /// `helm uninstall --wait`, then none of `kinds` is left in `namespace` but the root CA ConfigMap every namespace gets.
    static func uninstallLeavesNothing(_ helm: Kubectl, _ kubectl: Kubectl, release: String, namespace: String, kinds: String,
                                       seconds: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let uninstalled = try await helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "\(seconds)s", timeout: .seconds(seconds + 10))
        #expect(uninstalled.status == 0, "\(uninstalled)", sourceLocation: sourceLocation)
        let left = try await kubectl("get", kinds, "-n", namespace, "-o", "name")
        let remaining = left.stdout.split(separator: "\n").filter { !$0.contains("kube-root-ca.crt") }
        #expect(left.status == 0 && remaining.isEmpty, "\(left)", sourceLocation: sourceLocation)
    }

    /// Issue #14's helm step on the project's own chart: real gunicorn pods with the exporter and Redis, and the chart's
    /// `helm test` hook (templates/tests/metrics-test.yaml) checking through the Services that the exporter counts
    /// requests.
    @Test("helm install --wait, upgrade --wait, test and uninstall --wait of charts/kverify-demo on a 3-node sim: real pods, the chart's test hook passes")
    func helmLifecycleOfBundledChart() async throws {
        try await withSim(nodes: 3) { _, kubectl in
            let helm = kubectl.helm()
            let chart = RepositoryPaths.root.appendingPathComponent("charts/kverify-demo").path
            let installed = try await helm("install", "demo", chart, "-n", "demo-helm", "--create-namespace", "--wait", "--timeout", "240s",
                                           timeout: .seconds(250))
            try #require(installed.status == 0, "\(installed)")
            // helm's --wait accepts a rolling-update DaemonSet with numberReady ≥ desired − maxUnavailable (1 of 2 here),
            // as on a real cluster; the second pod becomes Ready a moment later.
            var ready = ""
            let allReady = await eventuallyAsync(timeout: .seconds(90)) {
                ready = try await kubectl("get", "daemonset", "gunicorn-prometheus-exporter-daemonset", "-n", "demo-helm", "-o",
                                          "jsonpath={.status.numberReady}/{.status.desiredNumberScheduled}").stdout
                return ready == "2/2"
            }
            #expect(allReady, "one pod per worker, both Ready: \(ready)")

            let upgraded = try await helm("upgrade", "demo", chart, "-n", "demo-helm", "--set", "ttlSeconds=120", "--wait", "--timeout", "240s",
                                          timeout: .seconds(250))
            try #require(upgraded.status == 0, "\(upgraded)")
            #expect(upgraded.stdout.contains("REVISION: 2"), "\(upgraded)")
            let ttl = try await kubectl("get", "daemonset", "gunicorn-prometheus-exporter-daemonset", "-n", "demo-helm", "-o",
                                        "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"REDIS_TTL_SECONDS\")].value}")
            #expect(ttl.stdout == "120", "\(ttl)")

            // The hook exits 0 only once gunicorn-metrics serves the request counter; it is deleted when it succeeds
            // (hook-succeeded), so its log cannot be fetched afterwards, on a cluster as here.
            let tested = try await helm("test", "demo", "-n", "demo-helm", "--timeout", "120s", timeout: .seconds(130))
            #expect(tested.status == 0, "\(tested)")
            #expect(tested.stdout.contains("TEST SUITE:     demo-metrics-test") && tested.stdout.contains("Phase:          Succeeded"), "\(tested)")

            try await Self.uninstallLeavesNothing(helm, kubectl, release: "demo", namespace: "demo-helm",
                                                  kinds: "daemonsets,deployments,services,configmaps", seconds: 120)
            // `--wait` covers what helm created; their pods go by garbage collection, gracefully, a moment later.
            let podsGone = await eventuallyAsync(timeout: .seconds(90)) {
                try await kubectl("get", "pods", "-n", "demo-helm", "-o", "name").stdout.isEmpty
            }
            #expect(podsGone, "pods left after the uninstall")
        }
    }
}
