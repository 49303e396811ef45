import Findings
import Foundation
import KVerifyTestSupport
import Processes
import KubeClient
import KubeConfig
import KubeModel
import KubeSim
import SimAPIServer
import SimFaults
import SimStore
import Testing

/// The `KubeAPI` contract against the simulated cluster with real pods (redis-server, gunicorn + the exporter):
/// every operation through both backends, compared with each other and with what the real kubectl 1.32 prints
/// for the same objects. One sim and one deployment serve the whole suite (bringing real pods up takes seconds);
/// the tests run in source order, and each one that needs the workload deploys it if no earlier test did, so a
/// single test still runs on its own (`swift test --filter SimContractTests/logs`).
@Suite("KubeAPI contract against the sim: REST, kubectl backend and the kubectl CLI agree", .serialized, .simSlot, .sharedSim)
struct SimContractTests {
    var fixture: SimContractFixture { get throws { try #require(SimContractFixture.current) } }

    @Test("the clients spoke the protocol this run is for: HTTP/2, or HTTP/1.1 with KVERIFY_CONTRACT_HTTP1 set")
    func protocolOfTheRun() async throws {
        let f = try fixture
        _ = try await f.rest.serverVersion()
        _ = try await f.kubectl.serverVersion()
        let traffic = f.sim.traffic
        if SimContractFixture.http1Only {
            #expect(traffic.http2Connections == 0 && traffic.http1Connections >= 2, "\(traffic)")
        } else {
            #expect(traffic.http2Connections >= 2, "\(traffic)")
        }
    }

    @Test("server version")
    func version() async throws {
        let f = try fixture
        let rest = try await f.rest.serverVersion()
        let kubectl = try await f.kubectl.serverVersion()
        #expect(rest == kubectl)
        #expect(rest.gitVersion == "v1.32.4")
        let cli = try JSONValue.parse(try await f.cli.json(["version", "--output=json"]))
        #expect(cli["serverVersion"]?["gitVersion"]?.stringValue == rest.gitVersion)
        #expect(cli["serverVersion"]?["major"]?.stringValue == rest.major)
        #expect(cli["serverVersion"]?["minor"]?.stringValue == rest.minor)
    }

    @Test("resource mapping for the manifests' kinds matches kubectl api-resources; an unknown kind is .unknownKind")
    func resourceMapping() async throws {
        let f = try fixture
        let kinds = Set(try SimContractFixture.manifests().map { "\($0.apiVersion) \($0.kind)" })
        #expect(kinds == ["apps/v1 Deployment", "v1 Service", "apps/v1 DaemonSet"])
        let namespaced = Set(try await f.cli.text(["api-resources", "--namespaced=true", "--output=name"]).split(separator: "\n").map(String.init))
        let clusterScoped = Set(try await f.cli.text(["api-resources", "--namespaced=false", "--output=name"]).split(separator: "\n").map(String.init))
        for pair in kinds.sorted() + ["v1 Pod", "v1 Event", "v1 Node", "v1 Namespace"] {
            let parts = pair.split(separator: " ").map(String.init)
            let rest = try await f.rest.resource(apiVersion: parts[0], kind: parts[1])
            let kubectl = try await f.kubectl.resource(apiVersion: parts[0], kind: parts[1])
            #expect(rest == kubectl, "\(pair)")
            // kubectl names a resource `plural.group` (core: `plural`).
            let cliName = rest.group.isEmpty ? rest.name : "\(rest.name).\(rest.group)"
            #expect((rest.namespaced ? namespaced : clusterScoped).contains(cliName), "\(pair) → \(cliName)")
        }
        #expect(try await f.rest.resource(apiVersion: "apps/v1", kind: "DaemonSet").name == "daemonsets")
        for api in f.backends {
            let error = await kubeError { _ = try await api.resource(apiVersion: "apps/v1", kind: "StatefulThing") }
            #expect(error?.code == .unknownKind)
        }
    }

    @Test("server-side apply of redis.yaml + daemonset.yaml into a fresh namespace; the other backend's apply is a no-op")
    func apply() async throws {
        let f = try fixture
        let workload = try await f.workload()
        let created = try workload.applied.map { try JSONDecoder().decode(ObjectHead.self, from: $0) }
        #expect(created.map(\.id) == ["Deployment/redis", "Service/redis-service", "DaemonSet/gunicorn-prometheus-exporter-daemonset",
                                      "Service/gunicorn-app", "Service/gunicorn-metrics"])
        #expect(created.allSatisfy { $0.namespace == workload.namespace && $0.uid.count == 36 })

        // The same intent from the same manager through the kubectl backend changes nothing: same objects, same generation.
        let again = try await f.kubectl.apply(workload.manifests).map { try JSONDecoder().decode(ObjectHead.self, from: $0) }
        #expect(again == created)

        // kubectl reads the same objects.
        struct Heads: Decodable { var items: [ObjectHead] }
        let listed = try JSONDecoder().decode(Heads.self, from: try await f.cli.json(
            ["get", "deployments,daemonsets,services", "-n", workload.namespace, "--output=json"])).items
        #expect(Set(listed) == Set(created))
    }

    @Test("a conflicting apply is .conflict (409) naming the owner, a taken nodePort .invalid (422), a missing pod .notFound (404)")
    func typedErrors() async throws {
        let f = try fixture
        let namespace = try await f.workload().namespace
        // Another manager changing a field `kverify` owns.
        var redis = try #require(try SimContractFixture.manifests(in: namespace).first { $0.kind == "Deployment" })
        redis.object = redis.object.setting(["spec", "replicas"], to: 2)
        for api in f.backends {
            let error = await kubeError { try await api.apply([redis], fieldManager: "contract-other") }
            #expect(error?.code == .conflict)
            #expect(error?.message.contains(#"conflict with "kverify""#) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains(".spec.replicas") == true, "\(error?.message ?? "")")
        }
        let cliConflict = try await f.cli.run(["apply", "--server-side", "--field-manager=contract-other", "--filename=-"],
                                              stdin: String(decoding: try redis.object.jsonData(), as: UTF8.self))
        #expect(cliConflict.status != 0)
        #expect(cliConflict.stderr.contains(#"Apply failed with 1 conflict: conflict with "kverify" using apps/v1: .spec.replicas"#), "\(cliConflict)")
        for api in f.backends {
            #expect(try await api.get(Deployment.self, name: "redis", namespace: namespace).spec?.replicas == 1)
        }

        // A second Service asking for the nodePort redis-service holds: 422 from the server, through all three.
        let taken = try ManifestLoader.load(yaml: """
            apiVersion: v1
            kind: Service
            metadata: {name: redis-copy, namespace: \(namespace)}
            spec:
              type: NodePort
              selector: {app: redis}
              ports: [{port: 6379, nodePort: 30379}]
            """, file: "taken.yaml")
        for api in f.backends {
            let error = await kubeError { try await api.apply(taken) }
            #expect(error?.code == .invalid)
            #expect(error?.message.contains("spec.ports[0].nodePort") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("provided port is already allocated") == true, "\(error?.message ?? "")")
            #expect(error?.isCausedByInput == true)
        }
        let cliInvalid = try await f.cli.run(["apply", "--server-side", "--filename=-"], stdin: String(decoding: try taken[0].object.jsonData(), as: UTF8.self))
        #expect(cliInvalid.stderr.contains(#"The Service "redis-copy" is invalid: spec.ports[0].nodePort: Invalid value: 30379: provided port is already allocated"#), "\(cliInvalid)")

        for api in f.backends {
            let error = await kubeError { _ = try await api.get(Pod.self, name: "ghost", namespace: namespace) }
            #expect(error?.code == .notFound)
            #expect(error?.message.contains("ghost") == true)
        }
        let cliMissing = try await f.cli.run(["get", "pod", "ghost", "-n", namespace])
        #expect(cliMissing.stderr == "Error from server (NotFound): pods \"ghost\" not found\n", "\(cliMissing)")
    }

    @Test("watch until the DaemonSet's pods are Ready: both backends see the same pods; kubectl rollout status agrees")
    func watchUntilReady() async throws {
        let f = try fixture
        let workload = try await f.workload()
        let workers = Set(f.sim.nodeNames.dropFirst())
        async let viaREST = SimContractFixture.waitForReadyPods(f.rest, namespace: workload.namespace, selector: SimContractFixture.daemonSetSelector,
                                                               count: workers.count, timeout: .seconds(180))
        async let viaKubectl = SimContractFixture.waitForReadyPods(f.kubectl, namespace: workload.namespace, selector: SimContractFixture.daemonSetSelector,
                                                                  count: workers.count, timeout: .seconds(180))
        let (rest, kubectl) = try await (viaREST.pods, viaKubectl.pods)
        #expect(rest.keys.sorted() == kubectl.keys.sorted())
        #expect(Set(rest.values.compactMap(\.spec?.nodeName)) == workers, "one pod per worker, none on the tainted control plane")
        #expect(rest.values.allSatisfy { $0.status?.containerStatuses.map(\.ready) == [true, true] })
        #expect(rest.values.allSatisfy { $0.status?.initContainerStatuses.first?.state?.terminated?.reason == "Completed" })

        let rollout = try await f.cli.run(["rollout", "status", "daemonset/\(SimContractFixture.daemonSetName)", "-n", workload.namespace, "--timeout=60s"])
        #expect(rollout.status == 0, "\(rollout)")
        #expect(rollout.stdout.contains("daemon set \"\(SimContractFixture.daemonSetName)\" successfully rolled out"), "\(rollout)")
        let wait = try await f.cli.run(["wait", "--for=condition=Ready", "pod", "-l", SimContractFixture.daemonSetSelector, "-n", workload.namespace, "--timeout=60s"])
        #expect(wait.status == 0, "\(wait)")
        #expect(wait.stdout.split(separator: "\n").map(String.init).sorted() == rest.keys.sorted().map { "pod/\($0) condition met" })

        // The DaemonSet's rollout fields as each backend reads them.
        var statuses: [String] = []
        for api in f.backends {
            let daemonSet = try await api.get(DaemonSet.self, name: SimContractFixture.daemonSetName, namespace: workload.namespace)
            let status = try #require(daemonSet.status)
            #expect(status.observedGeneration == daemonSet.metadata.generation)
            statuses.append("\(status.desiredNumberScheduled)/\(status.currentNumberScheduled)/\(status.updatedNumberScheduled)/\(status.numberReady)/\(status.numberAvailable)")
        }
        #expect(statuses == Array(repeating: "\(workers.count)/\(workers.count)/\(workers.count)/\(workers.count)/\(workers.count)", count: 2))
    }

    @Test("get and list with label and field selectors: same pods, same statuses, as kubectl get shows them")
    func selectors() async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        let worker = SimulatedCluster.nodeName(1)
        let cases: [(label: String?, field: String?)] = [
            (SimContractFixture.daemonSetSelector, nil),
            ("app.kubernetes.io/part-of=kverify-demo", nil),
            ("app in (redis),app.kubernetes.io/part-of", nil),
            ("app.kubernetes.io/part-of=kverify-demo", "spec.nodeName=\(worker)"),
            (nil, "status.phase=Running"),
            (nil, "status.phase!=Running"),
            ("app=nothing-here", nil),
        ]
        // Real probes run under the test's load, so a pod's status may change between two reads: the three clients
        // must agree on the same object versions, and a set of reads that straddles a change is taken again.
        func agreeingReads(_ reads: () async throws -> [[PodSummary]]) async throws -> [[PodSummary]] {
            var taken = try await reads()
            for _ in 0..<10 where Set(taken.map { $0.map(\.version) }).count > 1 {
                taken = try await reads()
            }
            return taken
        }
        var everything: [PodSummary] = []
        for (label, field) in cases {
            let options = ListOptions(labelSelector: label, fieldSelector: field)
            var arguments = ["get", "pods", "-n", namespace, "--output=json"]
            if let label { arguments += ["-l", label] }
            if let field { arguments += ["--field-selector", field] }
            let reads = try await agreeingReads {
                [try await f.rest.list(Pod.self, namespace: namespace, options: options).map(PodSummary.init),
                 try await f.kubectl.list(Pod.self, namespace: namespace, options: options).map(PodSummary.init),
                 try JSONDecoder().decode(KubeList<Pod>.self, from: try await f.cli.json(arguments)).items.map(PodSummary.init)]
            }
            #expect(reads[0] == reads[1], "-l \(label ?? "") --field-selector \(field ?? "")")
            #expect(reads[0] == reads[2], "-l \(label ?? "") --field-selector \(field ?? "")")
            if label == "app.kubernetes.io/part-of=kverify-demo", field == nil { everything = reads[0] }
        }
        // What the selectors should have picked, from the full list (read again with the node's pods, at one version).
        let nodeOptions = ListOptions(fieldSelector: "spec.nodeName=\(worker)")
        let allOptions = ListOptions(labelSelector: "app.kubernetes.io/part-of=kverify-demo")
        let pair = try await agreeingReads {
            let all = try await f.rest.list(Pod.self, namespace: namespace, options: allOptions).map(PodSummary.init)
            let onWorker = try await f.rest.list(Pod.self, namespace: namespace, options: nodeOptions).map(PodSummary.init)
            return [all.filter { $0.node == worker }, onWorker]
        }
        #expect(everything.count == 3)
        #expect(everything.allSatisfy { $0.phase == "Running" && !$0.ip.isEmpty })
        #expect(Set(everything.map(\.ip)).count == 3, "every pod has its own address")
        #expect(pair[1] == pair[0])
        #expect(try await f.rest.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: "app in (redis)")).map(\.metadata.name) == [everything.first { $0.name.hasPrefix("redis-") }?.name])

        // A single get agrees with the list entry of the same version.
        let name = try #require(everything.first?.name)
        for api in f.backends {
            let got = try await agreeingReads {
                [try await f.rest.list(Pod.self, namespace: namespace, options: allOptions).map(PodSummary.init).filter { $0.name == name },
                 [PodSummary(try await api.get(Pod.self, name: name, namespace: namespace))]]
            }
            #expect(got[1] == got[0])
        }
    }

    @Test("pod logs with container and tailLines: the same text as kubectl logs")
    func logs() async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        let pod = try await f.daemonSetPods(namespace).first!
        let expected = "sidecar: serving metrics from redis prefix 'gunicorn-\(pod)' on 0.0.0.0:9091\n"
        for api in f.backends {
            #expect(try await api.logs(pod: pod, namespace: namespace, container: "prometheus-exporter", tailLines: 1) == expected)
        }
        #expect(try await f.cli.text(["logs", pod, "-n", namespace, "-c", "prometheus-exporter", "--tail=1"]) == expected)

        // gunicorn's own start-up lines: the last two, the same through all three.
        let rest = try await f.rest.logs(pod: pod, namespace: namespace, container: "app", tailLines: 2)
        let kubectl = try await f.kubectl.logs(pod: pod, namespace: namespace, container: "app", tailLines: 2)
        let cli = try await f.cli.text(["logs", pod, "-n", namespace, "-c", "app", "--tail=2"])
        #expect(rest.split(separator: "\n").count == 2, "\(rest)")
        #expect(rest == kubectl)
        #expect(rest == cli)
        let whole = try await f.rest.logs(pod: pod, namespace: namespace, container: "app", tailLines: nil)
        #expect(whole.contains("Starting gunicorn"), "\(whole.prefix(400))")
        #expect(whole.hasSuffix(rest))

        for api in f.backends {
            let missing = await kubeError { _ = try await api.logs(pod: "ghost", namespace: namespace, container: "app", tailLines: 1) }
            #expect(missing?.code == .notFound)
            let badContainer = await kubeError { _ = try await api.logs(pod: pod, namespace: namespace, container: "nope", tailLines: 1) }
            #expect(badContainer?.code == .badRequest, "\(badContainer?.message ?? "")")
            #expect(badContainer?.message.contains("container nope is not valid for pod \(pod)") == true, "\(badContainer?.message ?? "")")
            // Several containers and none named: the API server's 400, not a container picked by the client.
            let unnamed = await kubeError { _ = try await api.logs(pod: pod, namespace: namespace, container: nil, tailLines: 1) }
            #expect(unnamed?.code == .badRequest, "\(unnamed?.message ?? "")")
            #expect(unnamed?.message.contains("a container name must be specified for pod \(pod)") == true, "\(unnamed?.message ?? "")")
        }
    }

    @Test("events for a pod by uid: the kubelet's Pulled/Created/Started (and the scheduler's Scheduled), as kubectl lists them")
    func events() async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        let pods = try await f.rest.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: "app.kubernetes.io/part-of=kverify-demo"))
        for pod in pods {
            let uid = try #require(pod.metadata.uid)
            let rest = try await f.rest.events(forUID: uid, namespace: namespace).map(EventSummary.init).sorted()
            let kubectl = try await f.kubectl.events(forUID: uid, namespace: namespace).map(EventSummary.init).sorted()
            let cli = try JSONDecoder().decode(KubeList<Event>.self, from: try await f.cli.json(
                ["get", "events", "-n", namespace, "--field-selector", "involvedObject.uid=\(uid)", "--output=json"])).items.map(EventSummary.init).sorted()
            // The pod's lifecycle events are final: all three reads agree exactly. A probe failure (a loaded machine
            // times probes out now and then) may repeat between the reads, so a later read has it at least as often.
            let lifecycle: Set<String> = ["Scheduled", "Pulled", "Created", "Started"]
            #expect(rest.filter { lifecycle.contains($0.reason) } == kubectl.filter { lifecycle.contains($0.reason) })
            #expect(rest.filter { lifecycle.contains($0.reason) } == cli.filter { lifecycle.contains($0.reason) })
            for (label, later) in [("kubectl backend", kubectl), ("kubectl CLI", cli)] {
                for event in rest where !lifecycle.contains(event.reason) {
                    #expect(later.contains { $0.object == event.object && $0.reason == event.reason && $0.message == event.message
                                             && $0.type == event.type && $0.count >= event.count },
                            "\(label) lacks \(event) that the REST read had: \(later)")
                }
            }
            let name = pod.metadata.name ?? ""
            #expect(rest.allSatisfy { $0.object == "Pod/\(name)" })
            let reasons = Set(rest.map(\.reason))
            #expect(reasons.isSuperset(of: ["Scheduled", "Pulled", "Created", "Started"]), "\(name): \(rest)")
            // One Created/Started per container the pod ran (init containers included).
            let containers = (pod.spec?.containers.count ?? 0) + (pod.spec?.initContainers?.count ?? 0)
            #expect(rest.filter { $0.reason == "Started" }.count >= containers, "\(name): \(rest)")
            #expect(rest.first { $0.reason == "Scheduled" }?.message == "Successfully assigned \(namespace)/\(name) to \(pod.spec?.nodeName ?? "")")
        }
    }

    @Test("proxy GET to the real exporter's /metrics (port 9091) and the app's JSON (port 8000)")
    func proxy() async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        let pods = try await f.rest.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: SimContractFixture.daemonSetSelector))
        let pod = try #require(pods.first)
        let name = pod.metadata.name ?? ""
        // The app answers with its pod and node; the request also moves the worker's request counter.
        for api in f.backends {
            let body = try await api.proxyGet(pod: name, port: 8000, path: "/", namespace: namespace)
            let app = try JSONValue.parse(Data(body))
            #expect(app["app"]?.stringValue == "kverify-demo")
            #expect(app["pod"]?.stringValue == name)
            #expect(app["node"]?.stringValue == pod.spec?.nodeName)
        }
        let cliApp = try JSONValue.parse(try await f.cli.json(["get", "--raw", "/api/v1/namespaces/\(namespace)/pods/\(name):8000/proxy/"]))
        #expect(cliApp["pod"]?.stringValue == name)

        // The exporter's families (values move between scrapes; the families do not).
        let rest = String(decoding: try await f.rest.proxyGet(pod: name, port: 9091, path: "metrics", namespace: namespace), as: UTF8.self)
        let kubectl = String(decoding: try await f.kubectl.proxyGet(pod: name, port: 9091, path: "/metrics", namespace: namespace), as: UTF8.self)
        let cli = try await f.cli.text(["get", "--raw", "/api/v1/namespaces/\(namespace)/pods/\(name):9091/proxy/metrics"])
        #expect(Self.families(rest) == Self.families(kubectl))
        #expect(Self.families(rest) == Self.families(cli))
        #expect(Self.families(rest).isSuperset(of: ["gunicorn_worker_requests_total", "gunicorn_worker_memory_bytes", "gunicorn_worker_uptime_seconds"]),
                "\(rest.prefix(600))")
        // The requests above were counted by this pod's workers, under this pod's Redis prefix.
        let requests = rest.split(separator: "\n").filter { $0.hasPrefix("gunicorn_worker_requests_total{") }
        #expect(requests.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +) >= 2, "\(requests)")

        for api in f.backends {
            let missing = await kubeError { _ = try await api.proxyGet(pod: "ghost", port: 9091, path: "metrics", namespace: namespace) }
            #expect(missing?.code == .notFound)
            // Nothing listens on port 1 of the pod: the API server's 503.
            let refused = await kubeError { _ = try await api.proxyGet(pod: name, port: 1, path: "metrics", namespace: namespace) }
            #expect(refused?.code == .serverError, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("connection refused") == true, "\(refused?.message ?? "")")
        }
    }

    @Test("exec through both backends: stdout, stderr and exit code 3 come back apart; a missing container or pod and a deadline are KubeErrors")
    func exec() async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        let pod = try #require(try await f.daemonSetPods(namespace).first)
        var results: [ExecResult] = []
        for api in f.backends {
            let result = try await api.exec(pod: pod, namespace: namespace, container: "app",
                                            command: ["sh", "-c", "echo out; echo err >&2; echo $HOSTNAME; exit 3"], timeout: .seconds(60))
            #expect(result.exitCode == 3, "\(result)")
            #expect(result.stdoutText == "out\n\(pod)\n", "\(result)")
            #expect(result.stderrText == "err\n", "\(result)")
            results.append(result)
            // A command that succeeds; output larger than one frame and the other container.
            let big = try await api.exec(pod: pod, namespace: namespace, container: "prometheus-exporter",
                                         command: ["sh", "-c", "seq 1 20000"], timeout: .seconds(60))
            #expect(big.exitCode == 0)
            #expect(big.stdoutText == (1...20000).map { "\($0)\n" }.joined())
            #expect(big.stderr.isEmpty)

            let missingContainer = await kubeError {
                _ = try await api.exec(pod: pod, namespace: namespace, container: "ghost", command: ["true"], timeout: .seconds(60))
            }
            #expect(missingContainer?.code == .badRequest, "\(missingContainer?.message ?? "")")
            #expect(missingContainer?.message.contains("container ghost is not valid for pod \(pod)") == true, "\(missingContainer?.message ?? "")")
            let missingPod = await kubeError {
                _ = try await api.exec(pod: "ghost", namespace: namespace, container: nil, command: ["true"], timeout: .seconds(60))
            }
            #expect(missingPod?.code == .notFound, "\(missingPod?.message ?? "")")
            let slow = await kubeError {
                _ = try await api.exec(pod: pod, namespace: namespace, container: "app", command: ["sleep", "60"], timeout: .seconds(2))
            }
            #expect(slow?.code == .timedOut, "\(slow?.message ?? "")")
        }
        #expect(results[0] == results[1])
    }

    /// A connection lost after the command ran (the sim's `exec.cutRate` fault): the command may have acted (a signal
    /// sent), so neither backend runs it again; the kubectl backend retries only failures from before the stream.
    @Test("an exec whose connection is lost after its command ran is a KubeError through both backends, and the command ran exactly once",
          arguments: Backend.allCases)
    func execLostMidStream(_ backend: Backend) async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        let pod = try #require(try await f.daemonSetPods(namespace).first)
        let marker = f.workspace.directory.appendingPathComponent("exec-ran-\(backend)").path
        var plan = FaultPlan()
        plan.execCutRate = 1
        f.sim.faults.plan = plan
        defer { f.sim.faults.plan = FaultPlan() }
        let lost = await kubeError {
            _ = try await f.api(backend).exec(pod: pod, namespace: namespace, container: "app",
                                              command: ["sh", "-c", "echo ran >> \(marker); echo done"], timeout: .seconds(60))
        }
        #expect(lost != nil, "the exec reported success without its output or status")
        #expect(lost?.code != .timedOut, "\(lost?.message ?? "")")
        let runs = (try? String(contentsOfFile: marker, encoding: .utf8)) ?? ""
        #expect(runs == "ran\n", "the command ran \(runs.split(separator: "\n").count) times; error: \(lost?.message ?? "none")")
        f.sim.faults.plan = FaultPlan()
        // With the fault gone, the same backend's next exec works.
        let after = try await f.api(backend).exec(pod: pod, namespace: namespace, container: "app", command: ["echo", "ok"], timeout: .seconds(60))
        #expect(after.stdoutText == "ok\n")
    }

    @Test("port-forward through both backends: 8 HTTP requests at once to the app, 200 KB each way through Redis, a refused port recorded, a missing pod a KubeError")
    func portForward() async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        let app = try #require(try await f.daemonSetPods(namespace).first)
        let redis = try #require(try await f.rest.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: "app=redis")).first?.metadata.name)
        for api in f.backends {
            // Connections at once, each its own forwarded stream; gunicorn answers HTTP/1.0 and closes.
            let answers = try await api.withPortForward(pod: app, namespace: namespace, port: 8000) { forward in
                try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<8 {
                        let port = forward.localPort
                        group.addTask {
                            String(decoding: try await runBlocking { try TCPExchange.run(port: port, send: Array("GET / HTTP/1.0\r\n\r\n".utf8)) }, as: UTF8.self)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            #expect(answers.count == 8)
            for answer in answers {
                #expect(answer.hasPrefix("HTTP/1.0 200") || answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
                #expect(answer.contains("\"pod\": \"\(app)\""), "\(answer.prefix(400))")
            }

            // More than one SPDY frame and one WebSocket message each way: a 200,000-byte value SET and read back.
            let value = String(repeating: "0123456789", count: 20_000)
            let commands = "*3\r\n$3\r\nSET\r\n$7\r\npf-test\r\n$\(value.utf8.count)\r\n\(value)\r\n*2\r\n$3\r\nGET\r\n$7\r\npf-test\r\n"
                + "*2\r\n$3\r\nDEL\r\n$7\r\npf-test\r\n*1\r\n$4\r\nQUIT\r\n"
            let replies = try await api.withPortForward(pod: redis, namespace: namespace, port: 6379) { forward in
                let port = forward.localPort
                return String(decoding: try await runBlocking { try TCPExchange.run(port: port, send: Array(commands.utf8)) }, as: UTF8.self)
            }
            #expect(replies == "+OK\r\n$\(value.utf8.count)\r\n\(value)\r\n:1\r\n+OK\r\n", "\(replies.prefix(120)) … \(replies.suffix(40))")

            // Nothing listens on port 1 of the pod: the local connection is closed, and the server's reason is kept.
            let refused = try await api.withPortForward(pod: app, namespace: namespace, port: 1) { forward in
                let port = forward.localPort
                let bytes = try await runBlocking { try TCPExchange.run(port: port, send: Array("ping".utf8)) }
                var errors = forward.errors()
                let deadline = ContinuousClock.now + .seconds(10)
                while errors.isEmpty, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    errors = forward.errors()
                }
                return (bytes, errors)
            }
            #expect(refused.0.isEmpty)
            #expect(refused.1.contains { $0.contains("connection refused") }, "\(refused.1)")

            let missing = await kubeError { _ = try await api.withPortForward(pod: "ghost", namespace: namespace, port: 8000) { _ in true } }
            #expect(missing?.code == .notFound, "\(missing?.message ?? "")")

            // A body that throws ends the forward all the same: the local port refuses, and no kubectl is left.
            struct Stop: Error { var port: Int }
            var stoppedPort = 0
            do {
                _ = try await api.withPortForward(pod: app, namespace: namespace, port: 8000) { forward -> Bool in throw Stop(port: forward.localPort) }
            } catch let stop as Stop {
                stoppedPort = stop.port
            }
            #expect(stoppedPort > 0)
            let port = stoppedPort
            #expect(throws: (any Error).self) { _ = try TCPExchange.run(port: port, send: Array("GET / HTTP/1.0\r\n\r\n".utf8)) }
            #expect(Self.portForwardProcesses(pod: app).isEmpty, "\(Self.portForwardProcesses(pod: app))")
        }
    }

    @Test("node list: names, roles, readiness, taints and addresses as kubectl get nodes shows them")
    func nodes() async throws {
        let f = try fixture
        let rest = try await f.rest.nodes().map(NodeSummary.init)
        let kubectl = try await f.kubectl.nodes().map(NodeSummary.init)
        let cli = try JSONDecoder().decode(KubeList<Node>.self, from: try await f.cli.json(["get", "nodes", "--output=json"])).items.map(NodeSummary.init)
        #expect(rest == kubectl)
        #expect(rest == cli)
        #expect(rest.map(\.name) == f.sim.nodeNames)
        #expect(rest.map(\.roles) == [["control-plane"], [], []])
        #expect(rest.map(\.taints) == [["node-role.kubernetes.io/control-plane:NoSchedule"], [], []])
        #expect(rest.allSatisfy { $0.ready })
        #expect(rest.map(\.address) == f.sim.nodeAddresses)
    }

    @Test("delete the namespace and wait until it is gone: both backends then get 404, and no pod process is left")
    func deleteNamespace() async throws {
        let f = try fixture
        let namespace = try await f.readyWorkload()
        // Every address a process of this namespace listens on: pod IPs with their container ports, and NodePorts.
        let pods = try await f.rest.list(Pod.self, namespace: namespace)
        var endpoints: [(host: String, port: Int)] = pods.flatMap { pod in
            (pod.spec?.containers ?? []).flatMap { $0.ports ?? [] }.map { (pod.status?.podIP ?? "", $0.containerPort) }
        }
        let services = try await f.rest.list(Service.self, namespace: namespace)
        endpoints += services.flatMap { ($0.spec?.ports ?? []).compactMap(\.nodePort) }.flatMap { port in f.sim.nodeAddresses.map { ($0, port) } }
        let expectedEndpoints = 2 * 2 + 1 + 3 * 3  // 2 ports × 2 DaemonSet pods, redis; 3 NodePorts × 3 nodes
        #expect(endpoints.count == expectedEndpoints)
        let listening = endpoints.filter { TCPProbe.canConnect(host: $0.host, port: $0.port) }
        #expect(listening.count == endpoints.count, "before the delete every endpoint answers: \(listening)")

        try await f.kubectl.deleteNamespace(namespace, waitUntilGone: .seconds(120))
        f.forgetWorkload()
        for api in f.backends {
            #expect(await kubeError { _ = try await api.get(Namespace.self, name: namespace) }?.code == .notFound)
            #expect(try await api.list(Pod.self, namespace: namespace).isEmpty)
        }
        let cli = try await f.cli.run(["get", "namespace", namespace])
        #expect(cli.stderr == "Error from server (NotFound): namespaces \"\(namespace)\" not found\n", "\(cli)")

        // The kubelet stops a deleted pod's processes after its grace period: wait for that, then nothing may answer.
        let deadline = ContinuousClock.now + .seconds(30)
        var still = endpoints
        while !still.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            still = still.filter { TCPProbe.canConnect(host: $0.host, port: $0.port) }
        }
        #expect(still.isEmpty, "still accepting connections after the namespace is gone: \(still)")
    }

    @Test("each backend creates a namespace with a pod, watches it Ready, deletes the namespace and waits: the pod's listener is gone",
          arguments: Backend.allCases)
    func namespaceLifecycle(_ backend: Backend) async throws {
        let f = try fixture
        let api = f.api(backend)
        let namespace = "kverify-contract-\(backend.rawValue)"
        // The stub runtime: the sim serves the exporter capture in-process, so this costs no process.
        let pod = try ManifestLoader.load(yaml: """
            apiVersion: v1
            kind: Pod
            metadata: {name: stub, namespace: \(namespace), labels: {app: stub}}
            spec: {containers: [{name: exporter, image: "kverify/stub-exporter:1", ports: [{containerPort: 9091}]}]}
            """, file: "stub.yaml")
        #expect(await kubeError { _ = try await api.get(Namespace.self, name: namespace) }?.code == .notFound)
        try await api.createNamespace(namespace)
        // The pod is created only once the watch has listed the empty namespace, so it arrives as watch events.
        let (ready, updates) = try await SimContractFixture.waitForReadyPods(
            api, namespace: namespace, selector: "app=stub", count: 1, timeout: .seconds(60), afterFirstSync: { try await api.apply(pod) })
        #expect(updates.first == .synced)
        #expect(updates.dropFirst().first == .added, "\(updates)")
        #expect(updates.contains(.modified), "the pod turned Ready through a MODIFIED event: \(updates)")
        let ip = try #require(ready["stub"]?.status?.podIP)
        let metrics = String(decoding: try await api.proxyGet(pod: "stub", port: 9091, path: "metrics", namespace: namespace), as: UTF8.self)
        #expect(Self.families(metrics).contains("gunicorn_worker_requests_total"))
        #expect(TCPProbe.canConnect(host: ip, port: 9091))

        try await api.deleteNamespace(namespace, waitUntilGone: .seconds(60))
        for other in f.backends {
            #expect(await kubeError { _ = try await other.get(Namespace.self, name: namespace) }?.code == .notFound)
        }
        #expect(try await f.cli.run(["get", "namespace", namespace]).stderr.contains("(NotFound)"))
        let deadline = ContinuousClock.now + .seconds(30)
        while TCPProbe.canConnect(host: ip, port: 9091), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!TCPProbe.canConnect(host: ip, port: 9091), "the deleted pod still listens on \(ip):9091")
    }

    /// Metric family names from `# TYPE` lines.
    /// Command lines of running `kubectl port-forward pod/POD …` processes.
    static func portForwardProcesses(pod: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return line.contains("port-forward") && line.contains("pod/\(pod)") ? line : nil
        }
    }

    static func families(_ exposition: String) -> Set<String> {
        Set(exposition.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.compactMap { $0.split(separator: " ").dropFirst(2).first.map(String.init) })
    }
}

// MARK: - What the tests compare

/// An object's identity as apply returns it and kubectl lists it: kind, name, namespace, uid and generation
/// (resourceVersion and managedFields timestamps may move without the object changing).
struct ObjectHead: Hashable, Decodable, CustomStringConvertible {
    var kind: String
    var name: String
    var namespace: String
    var uid: String
    var generation: Int64?

    private enum Keys: String, CodingKey { case kind, metadata }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        kind = try container.decodeIfPresent(String.self, forKey: .kind) ?? ""
        let metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        name = metadata.name ?? ""
        namespace = metadata.namespace ?? ""
        uid = metadata.uid ?? ""
        generation = metadata.generation
    }

    var id: String { "\(kind)/\(name)" }
    var description: String { "\(id) uid \(uid) generation \(generation.map(String.init) ?? "-")" }
}

/// What a user reads off a pod.
struct PodSummary: Equatable, CustomStringConvertible {
    var name: String
    var node: String
    var phase: String
    var ready: Bool
    var ip: String
    /// `name ready restarts` per container, init containers first.
    var containers: [String]
    /// The object's resourceVersion: reads compare only at the same version (see `selectors`).
    var version: String

    init(_ pod: Pod) {
        version = pod.metadata.resourceVersion ?? ""
        name = pod.metadata.name ?? ""
        node = pod.spec?.nodeName ?? ""
        phase = pod.status?.phase?.rawValue ?? ""
        ready = pod.isReady
        ip = pod.status?.podIP ?? ""
        containers = ((pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])).map { "\($0.name) \($0.ready) \($0.restartCount)" }
    }

    var description: String { "\(name)@\(node) \(phase) ready=\(ready) \(ip) \(containers)" }
}

struct EventSummary: Hashable, Comparable, CustomStringConvertible {
    var object: String
    var reason: String
    var message: String
    var type: String
    var count: Int

    init(_ event: Event) {
        object = "\(event.involvedObject.kind ?? "")/\(event.involvedObject.name ?? "")"
        reason = event.reason ?? ""
        message = event.message ?? ""
        type = event.type ?? ""
        count = event.count ?? 1
    }

    static func < (a: Self, b: Self) -> Bool { (a.reason, a.message) < (b.reason, b.message) }
    var description: String { "\(reason): \(message)" }
}

struct NodeSummary: Equatable {
    var name: String
    var roles: [String]
    var taints: [String]
    var ready: Bool
    var address: String

    init(_ node: Node) {
        name = node.metadata.name ?? ""
        roles = node.roles
        taints = (node.spec?.taints ?? []).map(\.summary)
        ready = node.isReady
        address = node.status?.addresses.first { $0.type == "InternalIP" }?.address ?? ""
    }
}

// MARK: - The shared fixture

/// Starts one sim around the whole suite and stops it afterwards, also when a test fails.
struct SharedSimTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let fixture = try await SimContractFixture.start()
        do {
            try await SimContractFixture.$current.withValue(fixture) { try await function() }
        } catch {
            await fixture.stop()
            throw error
        }
        await fixture.stop()
    }
}

extension Trait where Self == SharedSimTrait {
    static var sharedSim: Self { SharedSimTrait() }
}

/// A 3-node sim, both backends built from its kubeconfig through `KubeConfigLoader`, the real kubectl, and the
/// workload (deployed once, on first use).
final class SimContractFixture: Sendable {
    @TaskLocal static var current: SimContractFixture?

    static let daemonSetName = "gunicorn-prometheus-exporter-daemonset"
    static let daemonSetSelector = "app=gunicorn-prometheus-exporter,component=daemonset"
    static let namespace = "kverify-contract"

    struct Workload: Sendable {
        var namespace: String
        var manifests: [Manifest]
        /// The objects as the first (REST) apply stored them.
        var applied: [Data]
    }

    let sim: SimulatedCluster
    let workspace: Workspace
    let rest: any KubeAPI
    let kubectl: any KubeAPI
    let cli: KubectlCLI
    private let deployed = Locked<Task<Workload, any Error>?>(nil)

    var backends: [any KubeAPI] { [rest, kubectl] }

    func api(_ backend: Backend) -> any KubeAPI { backend == .rest ? rest : kubectl }

    private init(sim: SimulatedCluster, workspace: Workspace, rest: any KubeAPI, kubectl: any KubeAPI, cli: KubectlCLI) {
        self.sim = sim
        self.workspace = workspace
        self.rest = rest
        self.kubectl = kubectl
        self.cli = cli
    }

    /// Set (by `make test`'s second pass over this suite) to run the whole contract over HTTP/1.1: the sim then
    /// offers no h2, as a server or proxy without it would not, and every client falls back through ALPN.
    static let http1Only = ProcessInfo.processInfo.environment["KVERIFY_CONTRACT_HTTP1"] != nil

    static func start() async throws -> SimContractFixture {
        var options = SimulatedCluster.Options(nodes: 3)
        options.http2 = !http1Only
        let sim = try await SimulatedCluster.start(options: options)
        do {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-simcontract-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let workspace = Workspace(directory: directory)
            // Slow machine, real pods: a generous per-request deadline; waits have their own.
            let rest = try workspace.backend(.rest, kubeconfig: sim.kubeconfigPath, requestTimeout: .seconds(60))
            let kubectl = try workspace.backend(.kubectl, kubeconfig: sim.kubeconfigPath, requestTimeout: .seconds(60))
            let cli = KubectlCLI(kubeconfig: sim.kubeconfigPath, cacheDirectory: directory.appendingPathComponent("cli-cache"))
            return SimContractFixture(sim: sim, workspace: workspace, rest: rest, kubectl: kubectl, cli: cli)
        } catch {
            await sim.stop()
            throw error
        }
    }

    func stop() async {
        deployed.get()?.cancel()
        (rest as? RESTBackend)?.shutdown()
        await sim.stop()
        try? FileManager.default.removeItem(at: workspace.directory)
    }

    static func manifests(in namespace: String? = nil) throws -> [Manifest] {
        let directory = RepositoryPaths.root.appendingPathComponent("manifests")
        let all = try ["redis.yaml", "daemonset.yaml"].flatMap { try ManifestLoader.load(file: directory.appendingPathComponent($0).path) }
        guard let namespace else { return all }
        return all.map { manifest in
            var placed = manifest
            placed.object = manifest.object.setting(["metadata", "namespace"], to: .string(namespace))
            return placed
        }
    }

    /// The workload in a fresh namespace, applied through the REST backend the first time it is asked for.
    func workload() async throws -> Workload {
        let task = deployed.withLock { current in
            if let current { return current }
            let task = Task { [rest] in
                let namespace = Self.namespace
                let before = await kubeError { _ = try await rest.get(Namespace.self, name: namespace) }
                #expect(before?.code == .notFound, "the namespace must be fresh")
                try await rest.createNamespace(namespace)
                let manifests = try Self.manifests(in: namespace)
                return Workload(namespace: namespace, manifests: manifests, applied: try await rest.apply(manifests))
            }
            current = task
            return task
        }
        return try await task.value
    }

    /// The namespace of the workload once all its pods are Ready (watched through the REST backend).
    func readyWorkload() async throws -> String {
        let namespace = try await workload().namespace
        _ = try await Self.waitForReadyPods(rest, namespace: namespace, selector: "app.kubernetes.io/part-of=kverify-demo",
                                            count: sim.nodeNames.count, timeout: .seconds(180))
        return namespace
    }

    func forgetWorkload() { deployed.set(nil) }

    func daemonSetPods(_ namespace: String) async throws -> [String] {
        try await rest.list(Pod.self, namespace: namespace, options: ListOptions(labelSelector: Self.daemonSetSelector)).compactMap(\.metadata.name).sorted()
    }

    /// Watches the pods `selector` picks until there are `count` of them and all are Ready.
    /// - Parameter afterFirstSync: runs once the first list is in and the watch is about to start (to create the
    ///   pods only then, so that they arrive as watch events rather than in the list).
    /// - Returns: the pods by name as the last event showed them, and the kinds of update the watch delivered.
    static func waitForReadyPods(
        _ api: any KubeAPI, namespace: String, selector: String, count: Int, timeout: Duration,
        afterFirstSync: (() async throws -> Void)? = nil
    ) async throws -> (pods: [String: Pod], updates: [WatchUpdate.UpdateType]) {
        var pods: [String: Pod] = [:]
        var types: [WatchUpdate.UpdateType] = []
        func done() -> Bool { pods.count == count && pods.values.allSatisfy(\.isReady) }
        do {
            try await withTestDeadline(timeout) {
                for try await update in api.watch(.pods, namespace: namespace, options: ListOptions(labelSelector: selector)) {
                    types.append(update.type)
                    if types == [.synced], let afterFirstSync { try await afterFirstSync() }
                    switch update.type {
                    case .synced:
                        pods = [:]
                        for data in update.snapshot {
                            let pod = try JSONDecoder().decode(Pod.self, from: data)
                            pods[pod.metadata.name ?? ""] = pod
                        }
                    case .added, .modified:
                        if let pod = try update.decode(Pod.self) { pods[pod.metadata.name ?? ""] = pod }
                    case .deleted:
                        if let pod = try update.decode(Pod.self) { pods[pod.metadata.name ?? ""] = nil }
                    }
                    if done() { return }
                }
            }
        } catch let error as TestDeadlineExceeded {
            let seen = pods.values.map { pod in
                "\(pod.metadata.name ?? "") \(pod.status?.phase?.rawValue ?? "-") ready=\(pod.isReady) "
                    + ((pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? []))
                    .map { "\($0.name):\($0.state?.waiting?.reason ?? ($0.state?.running != nil ? "running" : "terminated"))" }.joined(separator: ",")
            }
            throw TestDeadlineExceeded(description: "\(error.description): waiting for \(count) Ready pods -l \(selector) in \(namespace); saw \(seen)")
        }
        return (pods, types)
    }
}

/// The real `kubectl` CLI with its own discovery cache, to compare the backends with what a user would see.
struct KubectlCLI: Sendable {
    struct Result: Sendable, CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var description: String { "exit \(status)\nstdout: \(stdout.prefix(2000))\nstderr: \(stderr.prefix(2000))" }
    }

    let kubeconfig: String
    let cacheDirectory: URL

    func run(_ arguments: [String], stdin: String? = nil, timeout: Duration = .seconds(90)) async throws -> Result {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = kubeconfig
        environment["KUBECACHEDIR"] = cacheDirectory.path
        environment["HOME"] = cacheDirectory.path
        let result = try await ProcessRunner.run("/usr/bin/kubectl", arguments: arguments, environment: environment,
                                                 stdin: Array((stdin ?? "").utf8), timeout: timeout)
        if result.timedOut { throw FixtureError("kubectl \(arguments.joined(separator: " ")) did not finish within \(timeout)") }
        return Result(status: result.exitCode, stdout: String(decoding: result.stdout, as: UTF8.self), stderr: String(decoding: result.stderr, as: UTF8.self))
    }

    /// Stdout of a command that must succeed.
    func text(_ arguments: [String]) async throws -> String {
        let result = try await run(arguments)
        guard result.status == 0 else { throw FixtureError("kubectl \(arguments.joined(separator: " ")) failed: \(result)") }
        return result.stdout
    }

    func json(_ arguments: [String]) async throws -> Data { Data(try await text(arguments).utf8) }
}

extension JSONValue {
    static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }

    /// A copy with the value at `path` replaced (objects created along the way).
    func setting(_ path: [String], to value: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        guard case .object(var fields) = self else { return .object([key: JSONValue.object([:]).setting(Array(path.dropFirst()), to: value)]) }
        fields[key] = (fields[key] ?? .object([:])).setting(Array(path.dropFirst()), to: value)
        return .object(fields)
    }
}
