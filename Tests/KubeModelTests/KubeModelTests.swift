import Foundation
import KubeModel
import Testing

private func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    try JSONDecoder().decode(type, from: Data(json.utf8))
}

@Suite("DaemonSet and Deployment status")
struct WorkloadDecodingTests {
    @Test("a fresh DaemonSet status with omitted counts decodes every count as 0")
    func omittedCountsAreZero() throws {
        let ds = try decode(DaemonSet.self, """
            {"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"exporter","namespace":"obs","generation":3},
             "spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":0}}},
             "status":{"desiredNumberScheduled":3,"observedGeneration":2}}
            """)
        let status = try #require(ds.status)
        #expect(status.desiredNumberScheduled == 3)
        #expect(status.numberAvailable == 0)
        #expect(status.updatedNumberScheduled == 0)
        #expect(status.numberMisscheduled == 0)
        #expect(status.observedGeneration == 2)
        #expect(status.conditions.isEmpty)
        #expect(ds.metadata.generation == 3)
        #expect(ds.spec?.updateStrategy?.rollingUpdate?.maxUnavailable == .string("25%"))
        #expect(ds.spec?.updateStrategy?.rollingUpdate?.maxSurge == .int(0))
        #expect(ds.reference == "DaemonSet/obs/exporter")
    }

    @Test("a Deployment with nil replicas and a ProgressDeadlineExceeded condition")
    func deploymentConditions() throws {
        let deployment = try decode(Deployment.self, """
            {"metadata":{"name":"web"},"spec":{},
             "status":{"replicas":2,"updatedReplicas":1,"conditions":[
               {"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"timed out"},
               {"type":"Available","status":"Maybe"}]}}
            """)
        #expect(deployment.spec?.replicas == nil)
        let status = try #require(deployment.status)
        #expect(status.readyReplicas == 0)
        #expect(status.availableReplicas == 0)
        #expect(status.conditions["Progressing"]?.reason == "ProgressDeadlineExceeded")
        #expect(status.conditions["Progressing"]?.status == .false)
        // An unknown condition status is kept verbatim, not fatal.
        #expect(status.conditions["Available"]?.status.rawValue == "Maybe")
    }

    @Test("a DaemonSet without status decodes with status nil")
    func noStatus() throws {
        let ds = try decode(DaemonSet.self, #"{"metadata":{"name":"x"}}"#)
        #expect(ds.status == nil)
        #expect(ds.reference == "DaemonSet/x")
    }
}

@Suite("Pod")
struct PodDecodingTests {
    static let crashLooping = """
        {"apiVersion":"v1","kind":"Pod",
         "metadata":{"name":"exporter-abc","namespace":"obs","uid":"u-1","labels":{"app":"exporter"}},
         "spec":{"nodeName":"node-1","containers":[{"name":"app","image":"demo:1","ports":[{"containerPort":8000}]}],
                 "initContainers":[{"name":"sidecar","restartPolicy":"Always"},{"name":"migrate"}]},
         "status":{"phase":"Running","podIP":"10.0.0.5",
           "conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"False","reason":"ContainersNotReady"}],
           "containerStatuses":[{"name":"app","ready":false,"restartCount":4,
              "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 40s"}},
              "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled"}}}],
           "initContainerStatuses":[{"name":"sidecar","ready":true,"started":true,"state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}},
              {"name":"migrate","state":{"terminated":{"reason":"Completed"}}}]}}
        """

    @Test("waiting and terminated reasons, restart counts, sidecars")
    func crashLoopingPod() throws {
        let pod = try decode(Pod.self, Self.crashLooping)
        #expect(!pod.isReady)
        #expect(pod.status?.phase == .running)
        let app = try #require(pod.status?.containerStatuses.first)
        #expect(app.state?.waiting?.reason == "CrashLoopBackOff")
        #expect(app.lastState?.terminated?.exitCode == 137)
        #expect(app.lastState?.terminated?.reason == "OOMKilled")
        #expect(app.restartCount == 4)
        #expect(pod.spec?.sidecars.map(\.name) == ["sidecar"])
        let migrate = try #require(pod.status?.initContainerStatuses.last)
        #expect(migrate.ready == false)  // omitted → false
        #expect(migrate.restartCount == 0)
        #expect(migrate.state?.terminated?.exitCode == 0)  // omitted → 0
        #expect(pod.spec?.containers.first?.ports?.first?.containerPort == 8000)
    }

    @Test("an unknown phase is kept, not fatal")
    func unknownPhase() throws {
        let pod = try decode(Pod.self, #"{"metadata":{"name":"p"},"status":{"phase":"Hibernating"}}"#)
        #expect(pod.status?.phase?.rawValue == "Hibernating")
        #expect(pod.status?.phase != .running)
    }

    @Test("ready means the Ready condition is True")
    func readyCondition() throws {
        let pod = try decode(Pod.self, #"{"metadata":{"name":"p"},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#)
        #expect(pod.isReady)
    }
}

@Suite("Node, Event, Service, Namespace, Status")
struct ClusterDecodingTests {
    struct NodeCase: Sendable, CustomTestStringConvertible {
        var json: String
        var ready: Bool
        var schedulable: Bool
        var roles: [String]
        var testDescription: String { "ready=\(ready) schedulable=\(schedulable) roles=\(roles)" }
    }

    @Test(arguments: [
        NodeCase(
            json: #"{"metadata":{"name":"cp","labels":{"node-role.kubernetes.io/control-plane":""}},"spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
            ready: true, schedulable: false, roles: ["control-plane"]),
        NodeCase(
            json: #"{"metadata":{"name":"w1"},"spec":{},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
            ready: true, schedulable: true, roles: []),
        NodeCase(
            json: #"{"metadata":{"name":"w2"},"spec":{"unschedulable":true},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
            ready: true, schedulable: false, roles: []),
        NodeCase(
            json: #"{"metadata":{"name":"w3"},"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}}"#,
            ready: false, schedulable: false, roles: []),
        NodeCase(
            json: #"{"metadata":{"name":"w4"},"spec":{"taints":[{"key":"gpu","value":"yes","effect":"PreferNoSchedule"}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
            ready: true, schedulable: true, roles: []),
    ])
    func nodes(_ c: NodeCase) throws {
        let node = try decode(Node.self, c.json)
        #expect(node.isReady == c.ready)
        #expect(node.isSchedulable == c.schedulable)
        #expect(node.roles == c.roles)
    }

    @Test("a NodeList with items null decodes as empty, keeping its resourceVersion")
    func emptyList() throws {
        let list = try decode(KubeList<Node>.self, #"{"kind":"NodeList","metadata":{"resourceVersion":"42"},"items":null}"#)
        #expect(list.items.isEmpty)
        #expect(list.metadata.resourceVersion == "42")
    }

    @Test("an Invalid Status keeps its causes")
    func invalidStatus() throws {
        let status = try decode(Status.self, """
            {"kind":"Status","apiVersion":"v1","status":"Failure","message":"DaemonSet.apps \\"x\\" is invalid",
             "reason":"Invalid","code":422,"details":{"name":"x","kind":"DaemonSet",
             "causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.selector"}]}}
            """)
        #expect(status.code == 422)
        #expect(status.reason == "Invalid")
        #expect(status.details?.causes?.first?.field == "spec.selector")
    }

    @Test("events, services and namespaces")
    func others() throws {
        let event = try decode(Event.self, """
            {"metadata":{"name":"e1","namespace":"obs"},"involvedObject":{"kind":"Pod","name":"p","uid":"u-1"},
             "reason":"BackOff","message":"Back-off restarting failed container","type":"Warning","count":7}
            """)
        #expect(event.involvedObject.uid == "u-1")
        #expect(event.count == 7)
        let service = try decode(Service.self, #"{"metadata":{"name":"s"},"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":"http","nodePort":30080}]}}"#)
        #expect(service.spec?.ports?.first?.targetPort == .string("http"))
        #expect(service.spec?.ports?.first?.nodePort == 30080)
        let namespace = try decode(Namespace.self, #"{"metadata":{"name":"n"},"status":{"phase":"Terminating"}}"#)
        #expect(namespace.status?.phase == "Terminating")
    }

    @Test("a SelfSubjectAccessReview refusal without `allowed` reads as not allowed")
    func accessReview() throws {
        let review = try decode(SelfSubjectAccessReview.self, """
            {"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview",
             "spec":{"resourceAttributes":{"verb":"get","resource":"pods","subresource":"proxy","namespace":"obs"}},
             "status":{"reason":"no RBAC policy matched"}}
            """)
        #expect(review.status?.allowed == false)
        #expect(review.spec.resourceAttributes.summary == "get pods/proxy in obs")
    }
}

@Suite("JSONValue")
struct JSONValueTests {
    @Test("round-trips a manifest keeping integers integral")
    func roundTrip() throws {
        let text = #"{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":2,"paused":false,"ratio":0.5,"x":null,"list":["a",1]}}"#
        let value = try decode(JSONValue.self, text)
        #expect(value["kind"]?.stringValue == "Deployment")
        let encoded = String(decoding: try value.jsonData(), as: UTF8.self)
        #expect(encoded == #"{"apiVersion":"apps/v1","kind":"Deployment","spec":{"list":["a",1],"paused":false,"ratio":0.5,"replicas":2,"x":null}}"#)
    }
}

@Suite("$(VAR) expansion as the kubelet does it")
struct EnvExpansionTests {
    @Test("defined references are replaced, $$ escapes, unknown and unclosed references stay", arguments: [
        ("gunicorn-$(POD_NAME)", "gunicorn-web-1"),
        ("$(POD_NAME):$(PORT)", "web-1:9091"),
        ("$$(POD_NAME) costs $$5", "$(POD_NAME) costs $5"),
        ("$(UNSET)-$(POD_NAME)", "$(UNSET)-web-1"),
        ("tail $(POD_NAME", "tail $(POD_NAME"),
        ("no references", "no references"),
        ("ends with $", "ends with $"),
    ])
    func expand(text: String, expected: String) {
        #expect(EnvExpansion.expand(text, ["POD_NAME": "web-1", "PORT": "9091"]) == expected)
    }
}
