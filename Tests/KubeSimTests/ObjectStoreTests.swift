import Foundation
import Synchronization
import KVerifyTestSupport
import KubeModel
import Testing
@testable import KubeSim
@testable import SimStore
@testable import SimFaults
@testable import SimControlPlane
@testable import SimAPIServer
@testable import SimNode

private let namespaces = ResourceCatalog.all[0]
private let pods = ResourceCatalog.all[2]
private let configMaps = ResourceCatalog.all[5]
private let deployments = ResourceCatalog.find(group: "apps", version: "v1", plural: "deployments")!

private func freshStore(historyLimit: Int = 5000) throws -> ObjectStore {
    let store = ObjectStore(historyLimit: historyLimit)
    try store.create(namespaces, namespace: nil, body: ["metadata": ["name": "default"]])
    return store
}

private func pod(_ name: String, labels: JSONValue = [:]) -> JSONValue {
    ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name), "labels": labels],
     "spec": ["containers": [["name": "app", "image": "demo:1"]]]]
}

@Suite("object store")
struct ObjectStoreTests {
    @Test("create fills in identity, resourceVersion and defaults")
    func create() throws {
        let store = try freshStore()
        let created = try store.create(pods, namespace: "default", body: pod("a"))
        #expect(created.string(at: "metadata", "uid")?.count == 36)
        #expect(created.string(at: "metadata", "resourceVersion") == String(store.currentResourceVersion))
        #expect(created.string(at: "metadata", "namespace") == "default")
        #expect(created.string(at: "status", "phase") == "Pending")
        #expect(created.string(at: "metadata", "creationTimestamp") != nil)
    }

    @Test("names are validated as the real server does", arguments: [
        ("ok-name", true), ("a.b.c", true), ("Bad_Name", false), ("-lead", false), ("trail-", false), (String(repeating: "a", count: 254), false),
    ])
    func names(_ name: String, _ valid: Bool) throws {
        let store = try freshStore()
        do {
            try store.create(pods, namespace: "default", body: pod(name))
            #expect(valid)
        } catch let error as APIError {
            #expect(!valid)
            #expect(error.code == 422)
            #expect(error.reason == "Invalid")
            #expect(error.message.hasPrefix("Pod \"\(name)\" is invalid: metadata.name: Invalid value: \"\(name)\""))
        }
    }

    @Test("errors carry the real server's code, reason and wording")
    func errors() throws {
        let store = try freshStore()
        try store.create(pods, namespace: "default", body: pod("a"))
        #expect(throws: APIError.alreadyExists(pods, "a")) { try store.create(pods, namespace: "default", body: pod("a")) }
        #expect(throws: APIError.notFound(pods, "b")) { try store.get(pods, namespace: "default", name: "b") }
        #expect(APIError.notFound(deployments, "web").message == "deployments.apps \"web\" not found")
        var stale = try store.get(pods, namespace: "default", name: "a")
        stale.set(["metadata", "resourceVersion"], to: "1")
        #expect(throws: APIError.conflict(pods, "a", "the object has been modified; please apply your changes to the latest version and try again")) {
            try store.update(pods, namespace: "default", name: "a", body: stale)
        }
        #expect(throws: APIError.notFound(namespaces, "nowhere")) { try store.create(pods, namespace: "nowhere", body: pod("a")) }
    }

    @Test("generation bumps on spec changes only; status updates go through the status subresource")
    func generation() throws {
        let store = try freshStore()
        let body: JSONValue = ["metadata": ["name": "web"], "spec": ["replicas": 1, "selector": ["matchLabels": ["app": "web"]],
                                                                     "template": ["metadata": ["labels": ["app": "web"]]]]]
        try store.create(deployments, namespace: "default", body: body)
        var labelled = try store.get(deployments, namespace: "default", name: "web")
        labelled.set(["metadata", "labels", "x"], to: "y")
        #expect(try store.update(deployments, namespace: "default", name: "web", body: labelled).value(at: ["metadata", "generation"]) == 1)
        let scaled = try store.patch(deployments, namespace: "default", name: "web", type: .merge, body: ["spec": ["replicas": 3]], manager: "test")
        #expect(scaled.object.value(at: ["metadata", "generation"]) == 2)
        // Status in a main-resource write is ignored, through /status it is kept.
        let ignored = try store.patch(deployments, namespace: "default", name: "web", type: .merge, body: ["status": ["replicas": 3]], manager: "test")
        #expect(ignored.object.value(at: ["status", "replicas"]) == nil)
        let status = try store.patch(deployments, namespace: "default", name: "web", type: .merge, body: ["status": ["replicas": 3]], statusOnly: true, manager: "test")
        #expect(status.object.value(at: ["status", "replicas"]) == 3)
        #expect(status.object.value(at: ["metadata", "generation"]) == 2)
    }

    @Test("server-side apply creates, detects conflicts, shares equal values and removes fields no longer applied")
    func serverSideApply() throws {
        let store = try freshStore()
        let config: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["a": "1", "b": "2"]]
        let created = try store.patch(configMaps, namespace: "default", name: "c", type: .apply(force: false), body: config, manager: "alice")
        #expect(created.created)
        // Bob applies the same value for `a`: co-owned, no conflict.
        let shared: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["a": "1"]]
        #expect(try !store.patch(configMaps, namespace: "default", name: "c", type: .apply(force: false), body: shared, manager: "bob").created)
        // Bob changes `b`, which Alice owns: conflict unless forced.
        let change: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["b": "3"]]
        do {
            _ = try store.patch(configMaps, namespace: "default", name: "c", type: .apply(force: false), body: change, manager: "bob")
            Issue.record("expected a conflict")
        } catch let error as APIError {
            #expect(error.code == 409)
            #expect(error.message == "Apply failed with 1 conflict: conflict with \"alice\" using v1: .data.b")
        }
        // Alice stops applying `b`: it goes away; `a` stays because Bob still applies it.
        let shrink: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": [:]]
        let after = try store.patch(configMaps, namespace: "default", name: "c", type: .apply(force: false), body: shrink, manager: "alice")
        #expect(after.object["data"] == ["a": "1"])
        #expect(throws: APIError.self) {
            try store.patch(configMaps, namespace: "default", name: "other", type: .apply(force: false), body: config, manager: "alice")
        }
    }

    @Test("deleting an owner cascades in the background or orphans its dependents")
    func cascade() throws {
        for policy in [DeleteOptions.Propagation.background, .orphan] {
            let store = try freshStore()
            let owner = try store.create(configMaps, namespace: "default", body: ["metadata": ["name": "owner"]])
            var child = pod("child")
            child.set(["metadata", "ownerReferences"], to: [["apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]!["uid"]!]])
            try store.create(pods, namespace: "default", body: child)
            var options = DeleteOptions()
            options.propagation = policy
            try store.delete(configMaps, namespace: "default", name: "owner", options: options)
            let remaining = store.list(pods, namespace: "default").items
            if policy == .orphan {
                #expect(remaining.count == 1)
                #expect(remaining.first?.value(at: ["metadata", "ownerReferences"]) == nil)
            } else {
                #expect(remaining.isEmpty)
            }
        }
    }

    @Test("a watch replays newer events, turns label changes into ADDED/DELETED, and 410s when too old")
    func watches() async throws {
        let store = try freshStore(historyLimit: 3)
        let start = store.currentResourceVersion
        let subscription = try store.watch(pods, namespace: "default", labels: try LabelQuery(parsing: "app=x"), start: .after(start))
        try store.create(pods, namespace: "default", body: pod("a", labels: ["app": "x"]))
        _ = try store.patch(pods, namespace: "default", name: "a", type: .merge, body: ["metadata": ["labels": ["app": "y"]]], manager: "t")
        _ = try store.patch(pods, namespace: "default", name: "a", type: .merge, body: ["metadata": ["labels": ["app": "x"]]], manager: "t")
        try store.delete(pods, namespace: "default", name: "a")
        var types: [String] = []
        for await event in subscription.events {
            types.append(event.type.rawValue)
            if types.count == 4 { break }
        }
        subscription.cancel()
        #expect(types == ["ADDED", "DELETED", "ADDED", "DELETED"])
        #expect(store.watcherCount == 0)
        #expect(throws: APIError.expired(requested: start, oldest: store.currentResourceVersion - 2)) {
            try store.watch(pods, namespace: "default", start: .after(start))
        }
    }

    @Test("thousands of concurrent watches all get the event and unregister when cancelled")
    func manyWatches() async throws {
        let store = try freshStore()
        let subscriptions = try (0..<3000).map { _ in try store.watch(configMaps, namespace: nil, start: .after(store.currentResourceVersion)) }
        #expect(store.watcherCount == 3000)
        try store.create(configMaps, namespace: "default", body: ["metadata": ["name": "c"]])
        var received = 0
        for subscription in subscriptions {
            for await event in subscription.events {
                if event.object.string(at: "metadata", "name") == "c" { received += 1 }
                break
            }
            subscription.cancel()
        }
        #expect(received == 3000)
        #expect(store.watcherCount == 0)
    }
}

@Suite("selectors and patches")
struct SelectorAndPatchTests {
    @Test("label selectors", arguments: [
        ("app=x", ["app": "x"], true), ("app==x", ["app": "y"], false), ("app!=x", [:], true),
        ("app in (x, y)", ["app": "y"], true), ("app notin (x,y)", ["app": "x"], false), ("app", ["app": ""], true),
        ("!app", ["app": "x"], false), ("app=x,tier", ["app": "x"], false), ("k8s.io/role=a", ["k8s.io/role": "a"], true),
    ] as [(String, [String: String], Bool)])
    func labels(_ text: String, _ labels: [String: String], _ matches: Bool) throws {
        #expect(try LabelQuery(parsing: text).matches(labels) == matches)
    }

    @Test("malformed label selectors are 400 BadRequest", arguments: ["app=(x", "a b c", "app in x", "=x"])
    func badLabels(_ text: String) {
        #expect { try LabelQuery(parsing: text) } throws: { ($0 as? APIError)?.code == 400 }
    }

    @Test("field selectors accept only supported fields")
    func fields() throws {
        let query = try FieldQuery(parsing: "spec.nodeName=n1,status.phase!=Failed", for: pods)
        #expect(query.matches(["spec": ["nodeName": "n1"], "status": ["phase": "Running"]]))
        #expect(!query.matches(["spec": ["nodeName": "n2"]]))
        #expect(throws: APIError.badRequest("field label not supported: spec.color")) { try FieldQuery(parsing: "spec.color=red", for: pods) }
    }

    @Test("JSON merge patch follows RFC 7386")
    func mergePatch() {
        let target: JSONValue = ["a": "b", "c": ["d": "e", "f": "g"], "list": [1, 2]]
        let patch: JSONValue = ["a": "z", "c": ["f": nil], "list": [3]]
        #expect(Patching.mergePatch(target, patch) == ["a": "z", "c": ["d": "e"], "list": [3]])
    }

    @Test("strategic merge merges named lists by name and drops directives")
    func strategicMerge() {
        let target: JSONValue = ["containers": [["name": "a", "image": "1"], ["name": "b", "image": "1"]]]
        let patch: JSONValue = ["$setElementOrder/containers": [["name": "a"]], "containers": [["name": "b", "image": "2"]]]
        #expect(Patching.strategicMerge(target, patch) == ["containers": [["name": "a", "image": "1"], ["name": "b", "image": "2"]]])
    }

    @Test("strategic merge keys container ports by containerPort, Service ports by port, mounts by mountPath, and honours $patch, $retainKeys and $deleteFromPrimitiveList")
    func strategicMergeKeys() {
        let container: JSONValue = ["name": "app", "ports": [["containerPort": 80, "name": "web"], ["containerPort": 9000]],
                                    "env": [["name": "A", "value": "1"], ["name": "B", "value": "2"]],
                                    "volumeMounts": [["name": "v", "mountPath": "/a"], ["name": "v", "mountPath": "/b"]]]
        let patch: JSONValue = ["ports": [["containerPort": 9000, "$patch": "delete"], ["containerPort": 80, "protocol": "TCP"]],
                                "env": [["name": "B", "$patch": "delete"], ["name": "C", "value": "3"]],
                                "volumeMounts": [["mountPath": "/b", "readOnly": true]]]
        #expect(Patching.strategicMerge(container, patch) == [
            "name": "app", "ports": [["containerPort": 80, "name": "web", "protocol": "TCP"]],
            "env": [["name": "A", "value": "1"], ["name": "C", "value": "3"]],
            "volumeMounts": [["name": "v", "mountPath": "/a"], ["name": "v", "mountPath": "/b", "readOnly": true]],
        ])
        let service: JSONValue = ["ports": [["port": 80, "targetPort": 8080], ["port": 443]], "selector": ["a": "b", "c": "d"]]
        #expect(Patching.strategicMerge(service, ["ports": [["port": 443, "targetPort": 8443]], "selector": ["c": nil]])
                == ["ports": [["port": 80, "targetPort": 8080], ["port": 443, "targetPort": 8443]], "selector": ["a": "b"]])
        // Lists without a merge key (args, NetworkPolicy rules) are replaced.
        #expect(Patching.strategicMerge(["args": ["a", "b"]], ["args": ["c"]]) == ["args": ["c"]])
        let strategy: JSONValue = ["type": "RollingUpdate", "rollingUpdate": ["maxSurge": 1]]
        #expect(Patching.strategicMerge(["strategy": strategy], ["strategy": ["$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": nil]])
                == ["strategy": ["type": "Recreate"]])
        #expect(Patching.strategicMerge(["spec": ["a": 1, "b": 2]], ["spec": ["$patch": "replace", "c": 3]]) == ["spec": ["c": 3]])
        #expect(Patching.strategicMerge(["finalizers": ["x", "y"]], ["$deleteFromPrimitiveList/finalizers": ["x"]]) == ["finalizers": ["y"]])
    }

    @Test("JSON patch applies add, replace, remove and fails a missing path with 400")
    func jsonPatch() throws {
        let result = try Patching.jsonPatch(["a": ["b": 1], "l": [1]], [
            ["op": "add", "path": "/a/c", "value": 2], ["op": "replace", "path": "/a/b", "value": 3],
            ["op": "remove", "path": "/l/0"], ["op": "add", "path": "/l/-", "value": 9],
        ])
        #expect(result == ["a": ["b": 3, "c": 2], "l": [9]])
        #expect { try Patching.jsonPatch([:], [["op": "remove", "path": "/x"]]) } throws: { ($0 as? APIError)?.code == 400 }
    }

    @Test("protobuf bodies of kubectl's typed clients decode to JSON")
    func protobuf() throws {
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        let meta = field(1, Array("demo".utf8)) + field(11, field(1, Array("team".utf8)) + field(2, Array("a".utf8)))
        let unknown = field(1, field(1, Array("v1".utf8)) + field(2, Array("Namespace".utf8))) + field(2, field(1, meta))
        let decoded = try ProtobufBody.decode(Data(ProtobufBody.magic + unknown))
        #expect(decoded == ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "demo", "labels": ["team": "a"]]])
        #expect { try ProtobufBody.decode(Data([0x6B, 0x38, 0x73, 0x00, 0x0A, 0x7F])) } throws: { ($0 as? APIError)?.code == 400 }
    }

    @Test("protobuf DeleteOptions (helm uninstall) and a Deployment (kubectl create deployment) decode by ProtobufSchema's field numbers")
    func protobufSchema() throws {
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        func varint(_ number: UInt8, _ value: UInt8) -> [UInt8] { [number << 3, value] }
        func envelope(_ kind: String, _ raw: [UInt8]) -> Data {
            Data(ProtobufBody.magic + field(1, field(1, Array("v1".utf8)) + field(2, Array(kind.utf8))) + field(2, raw))
        }
        // gracePeriodSeconds 0 (a pointer: kept), propagationPolicy Background, an empty dryRun absent.
        let options = try ProtobufBody.decode(envelope("DeleteOptions", varint(1, 0) + field(4, Array("Background".utf8))))
        #expect(options == ["apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Background"])

        // gogo writes empty non-pointer fields (workingDir "", hostPort 0): JSON has none of them.
        let port = varint(2, 0) + varint(3, 80) + field(4, Array("TCP".utf8))
        let container = field(1, Array("web".utf8)) + field(2, Array("nginx:1".utf8)) + field(5, []) + field(6, port)
        let podSpec = field(2, container) + field(1, field(1, Array("cache".utf8)) + field(2, field(2, [])))
        let labels = field(11, field(1, Array("app".utf8)) + field(2, Array("web".utf8)))
        let spec = varint(1, 0) + field(2, field(1, field(1, Array("app".utf8)) + field(2, Array("web".utf8))))
            + field(3, field(1, labels) + field(2, podSpec))
        let deployment = try ProtobufBody.decode(envelope("Deployment", field(1, field(1, Array("web".utf8))) + field(2, spec)))
        #expect(deployment == [
            "apiVersion": "v1", "kind": "Deployment", "metadata": ["name": "web"],
            "spec": [
                "replicas": 0, "selector": ["matchLabels": ["app": "web"]],
                "template": ["metadata": ["labels": ["app": "web"]], "spec": [
                    "containers": [["name": "web", "image": "nginx:1", "ports": [["containerPort": 80, "protocol": "TCP"]]]],
                    "volumes": [["name": "cache", "emptyDir": [:]]],
                ]],
            ],
        ])
    }
}

@Suite("pod environment")
struct PodEnvironmentTests {
    @Test("a runtime map whose PATH names a missing .venv fails the container with the bootstrap step")
    func missingVenvNamesTheNextStep() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-podenv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pod: JSONValue = ["metadata": ["name": "p", "namespace": "ns"], "spec": ["containers": [["name": "app", "image": "demo:1"]]]]
        let environment = PodEnvironment(pod: pod, podIP: "127.9.8.1", hostIP: "127.9.0.2", podDirectory: directory,
                                         store: ObjectStore(), serviceVariables: [], hostsFile: "", shim: nil)
        var entry = RuntimeMap.Entry(image: "demo:*")
        entry.entrypoint = ["gunicorn"]
        entry.path = [directory.appendingPathComponent("checkout/.venv/bin").path]
        let container = try #require(pod.value(at: ["spec", "containers"])?.arrayValue?.first)
        do {
            _ = try environment.launch(container, entry: entry, logFile: directory.appendingPathComponent("log").path)
            Issue.record("launched without gunicorn on PATH")
        } catch let error as ContainerConfigError {
            #expect(error.reason == "StartError")
            #expect(error.message.contains("exec: \"gunicorn\": executable file not found in $PATH"), "\(error.message)")
            #expect(error.message.contains("run scripts/bootstrap.sh to create the .venv"), "\(error.message)")
        }
    }
}

/// A write hands its event to every watch under the store's lock; a watching task may be cancelled at that moment,
/// and its cancellation handler (the stream's `onTermination`, or a loop's own `subscription.cancel()` as the kubelet
/// and the controllers have) runs holding that task's status lock, which the yield needs. Ending a watch must not wait
/// for the store's lock: a sim stop hung in CI that way.
@Suite("object store: watches cancelled while events flow")
struct ObjectStoreWatchCancellationTests {
    enum CancelStyle: String, CaseIterable, Sendable { case taskCancellation, cancelInHandler }

    @Test("300 watching tasks cancelled mid-stream while a writer writes all end, and the store drops their watchers",
          arguments: CancelStyle.allCases)
    func cancelWhileWriting(style: CancelStyle) async throws {
        let store = try freshStore(historyLimit: 100)
        // A thread, not a task: a loop that never suspends would take one of the (here two) cooperative threads.
        let writing = WritingThread(store)
        defer { writing.stop() }
        let rounds = Task.detached {
            var received = 0
            for round in 0..<300 {
                let subscription = try store.watch(configMaps, namespace: nil, start: .after(store.currentResourceVersion))
                let reader = Task.detached {
                    var count = 0
                    switch style {
                    case .taskCancellation:
                        for await _ in subscription.events { count += 1 }
                    case .cancelInHandler:
                        await withTaskCancellationHandler {
                            for await _ in subscription.events { count += 1 }
                        } onCancel: {
                            subscription.cancel()
                        }
                    }
                    return count
                }
                try await Task.sleep(for: .microseconds(100 * (round % 10) + 200))
                reader.cancel()
                received += await reader.value
            }
            return received
        }
        let received = try await awaitResult(of: rounds, within: .seconds(120))?.get()
        writing.stop()
        #expect(writing.writes > 0)
        #expect(received != nil, "a cancelled watch never came back: the store's lock is held by a stuck writer")
        #expect((received ?? 0) > 0, "no watch saw any of the writer's events")
        #expect(store.watcherCount == 0)
    }

    /// Creates ConfigMaps as fast as it can until stopped.
    final class WritingThread: Sendable {
        private let stopped = Atomic(false)
        private let count = Atomic(0)
        private let done = DispatchSemaphore(value: 0)
        var writes: Int { count.load(ordering: .relaxed) }

        init(_ store: ObjectStore) {
            Thread { [self] in
                while !stopped.load(ordering: .relaxed) {
                    let index = count.add(1, ordering: .relaxed).newValue
                    _ = try? store.create(configMaps, namespace: "default", body: ["metadata": ["name": .string("w\(index)")]])
                }
                done.signal()
            }.start()
        }

        /// Stops the thread and waits for it; a second call returns at once.
        func stop() {
            if stopped.exchange(true, ordering: .relaxed) == false { done.wait() }
        }
    }

    @Test("cancel ends the stream of a watch whose task goes on; the other watches keep receiving")
    func cancelEndsOnlyItsStream() async throws {
        let store = try freshStore()
        let cancelled = try store.watch(configMaps, namespace: nil, start: .after(store.currentResourceVersion))
        let kept = try store.watch(configMaps, namespace: nil, start: .after(store.currentResourceVersion))
        let reader = Task { var names: [String] = []; for await event in cancelled.events { names.append(event.object.string(at: "metadata", "name") ?? "") }; return names }
        _ = try store.create(configMaps, namespace: "default", body: ["metadata": ["name": "before"]])
        #expect(store.watcherCount == 2)
        cancelled.cancel()
        _ = try store.create(configMaps, namespace: "default", body: ["metadata": ["name": "after"]])
        #expect(await reader.value == ["before"])
        #expect(store.watcherCount == 1)
        var iterator = kept.events.makeAsyncIterator()
        #expect(await iterator.next()?.object.string(at: "metadata", "name") == "before")
        #expect(await iterator.next()?.object.string(at: "metadata", "name") == "after")
        kept.cancel()
        #expect(store.watcherCount == 0)
    }
}
