import Foundation
import KubeModel
import Processes

/// One event of a watch, its object still as JSON (decode it with `decode(_:)`).
public struct WatchEvent: Sendable {
    public var type: WatchEventType
    /// The object's JSON; for `ERROR` a `Status`, for `BOOKMARK` an object with only metadata.
    public var object: Data

    public init(type: WatchEventType, object: Data) {
        self.type = type
        self.object = object
    }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: object)
        } catch {
            throw KubeError(.badResponse, "watch event \(self.type) does not decode as \(T.self): \(error)")
        }
    }

    /// `metadata.resourceVersion` of the object.
    var resourceVersion: String? {
        // Found without decoding the object (this is read for every event of every watch).
        let found: String?? = object.withUnsafeBytes { bytes in
            // nil: the scan cannot tell (escaped keys, not an object); decode below.
            guard let top = JSONScan.members(bytes) else { return nil }
            guard let metadata = top.last(where: { $0.key == "metadata" })?.value else { return .some(nil) }
            let inner = UnsafeRawBufferPointer(rebasing: bytes[metadata])
            guard let members = JSONScan.members(inner) else { return nil }
            guard let version = members.last(where: { $0.key == "resourceVersion" })?.value else { return .some(nil) }
            return JSONScan.plainString(inner, version).map { .some($0) }  // escaped: decode below
        }
        if let found { return found }
        struct Probe: Decodable {
            struct Meta: Decodable { var resourceVersion: String? }
            var metadata: Meta?
        }
        return (try? JSONDecoder().decode(Probe.self, from: object))?.metadata?.resourceVersion
    }
}

/// A list's items (as JSON) and the resourceVersion a watch continues from.
public struct RawList: Sendable {
    public var items: [Data]
    public var resourceVersion: String?

    public func decode<T: Decodable>(_ type: T.Type) throws -> [T] {
        try items.map { try JSONDecoder().decode(type, from: $0) }
    }
}

/// What a command run through `pods/exec` printed and how it ended.
public struct ExecResult: Sendable, Equatable {
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// The command's exit code (the kubelet's `NonZeroExitCode` Status carries it; 0 on `Success`).
    public var exitCode: Int32

    public init(stdout: [UInt8], stderr: [UInt8], exitCode: Int32) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitCode = exitCode
    }

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Everything kverify asks of a cluster. Two backends implement it — `RESTBackend` (libcurl) and
/// `KubectlBackend` (the kubectl binary) — and must give the same answers and the same `KubeError`s.
/// Typed conveniences (`get(Pod.self, …)`, `watch(…)` with relist and reconnect) are built on top in extensions.
public protocol KubeAPI: Sendable {
    /// The namespace of the selected context (or `--namespace`), used when a call passes none.
    var defaultNamespace: String { get }

    /// `GET /version`.
    func serverVersion() async throws -> VersionInfo

    /// Maps a manifest's apiVersion and kind to its resource path (`DaemonSet` in `apps/v1` → `daemonsets`,
    /// namespaced). Throws `.unknownKind` when the cluster does not serve it.
    func resource(apiVersion: String, kind: String) async throws -> Resource

    /// Server-side apply of one object (field manager `fieldManager`): creates it or updates the fields this
    /// manager owns. Throws `.conflict` naming the other manager's fields unless `force`.
    /// - Returns: the object as stored.
    func apply(_ object: JSONValue, resource: Resource, fieldManager: String, force: Bool) async throws -> Data

    func get(_ resource: Resource, name: String, namespace: String?) async throws -> Data

    /// A list, filtered by the server. `namespace: nil` on a namespaced resource lists the default namespace.
    func list(_ resource: Resource, namespace: String?, options: ListOptions) async throws -> RawList

    /// One watch request from `resourceVersion`: events as the server sends them, ending when the server ends
    /// the request (its `timeoutSeconds`) or the connection drops. `watch(…)` adds relist and reconnect.
    func watchOnce(
        _ resource: Resource, namespace: String?, options: ListOptions, resourceVersion: String, timeoutSeconds: Int
    ) async throws -> AsyncThrowingStream<WatchEvent, any Error>

    /// Deletes with `propagation`; returns once the server accepted (see `deleteAndWait`).
    func delete(_ resource: Resource, name: String, namespace: String?, propagation: PropagationPolicy) async throws

    /// A container's log; `tailLines` keeps the last lines only.
    func logs(pod: String, namespace: String?, container: String?, tailLines: Int?) async throws -> String

    /// `GET /api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}` through the API server.
    func proxyGet(pod: String, port: Int, path: String, namespace: String?) async throws -> [UInt8]

    /// Whether the caller may do something (`SelfSubjectAccessReview`); `nil` when the server cannot tell.
    func canI(_ attributes: SelfSubjectAccessReview.ResourceAttributes) async throws -> Bool?

    func createNamespace(_ name: String) async throws

    /// Runs `command` in a container of a running pod (`pods/exec`, no stdin, no tty) and returns what it printed
    /// and how it ended. A command that exits non-zero is a result, not an error; a missing pod or container, a pod
    /// that is not running, or a refused exec throw the `KubeError` the server's Status names. `timeout` bounds the
    /// whole exec (connection to exit) and ends in `.timedOut`.
    func exec(pod: String, namespace: String?, container: String?, command: [String], timeout: Duration) async throws -> ExecResult

    /// Forwards connections made to `127.0.0.1:<PortForward.localPort>` to `port` of the pod, as `kubectl port-forward
    /// pod/NAME :PORT` does, while `body` runs; the listener and every forwarded connection end when it returns or
    /// throws. A missing pod throws the server's `KubeError` before `body` runs. A connection the pod refuses (nothing
    /// listens) is closed at once, and the server's message is kept in `PortForward.errors()`.
    func withPortForward<T: Sendable>(pod: String, namespace: String?, port: Int,
                                      _ body: (PortForward) async throws -> T) async throws -> T

    /// The transient errors this client retried so far; nil when it does not count them.
    var retries: RetryLedger? { get }
}

extension KubeAPI {
    public var retries: RetryLedger? { nil }

    /// The namespace a call uses: the given one, or the context's default for namespaced resources.
    func effectiveNamespace(_ resource: Resource, _ namespace: String?) -> String? {
        resource.namespaced ? (namespace ?? defaultNamespace) : nil
    }

    /// The URL path of one watch request, the same for both backends: bookmarks on, events after
    /// `resourceVersion`, ended by the server after `timeoutSeconds`.
    func watchPath(
        _ resource: Resource, namespace: String?, options: ListOptions, resourceVersion: String, timeoutSeconds: Int
    ) -> String {
        let query = options.queryItems + [
            ("watch", "true"), ("allowWatchBookmarks", "true"), ("resourceVersion", resourceVersion),
            ("timeoutSeconds", "\(timeoutSeconds)"),
        ]
        return pathWithQuery(resource.path(namespace: effectiveNamespace(resource, namespace)), query)
    }

    /// A typed get of a modelled kind.
    public func get<T: KubeObject>(_ type: T.Type, name: String, namespace: String? = nil) async throws -> T {
        let resource = try requireResource(type)
        return try decodeObject(T.self, try await get(resource, name: name, namespace: namespace), what: "\(T.kind) \(name)")
    }

    /// A typed list of a modelled kind.
    public func list<T: KubeObject>(_ type: T.Type, namespace: String? = nil, options: ListOptions = ListOptions()) async throws -> [T] {
        let resource = try requireResource(type)
        let list = try await list(resource, namespace: namespace, options: options)
        return try list.items.map { try decodeObject(T.self, $0, what: "\(T.kind) list item") }
    }

    public func nodes() async throws -> [Node] { try await list(Node.self) }

    /// Events whose `involvedObject.uid` is `uid`, oldest first.
    public func events(forUID uid: String, namespace: String? = nil) async throws -> [Event] {
        try await list(Event.self, namespace: namespace, options: ListOptions(fieldSelector: "involvedObject.uid=\(uid)"))
    }

    public func deleteNamespace(_ name: String, waitUntilGone timeout: Duration? = nil) async throws {
        if let timeout {
            try await deleteAndWait(.namespaces, name: name, namespace: nil, propagation: .background, timeout: timeout)
        } else {
            try await delete(.namespaces, name: name, namespace: nil, propagation: .background)
        }
    }

    /// Deletes and waits until a get answers 404 (kubectl's `--wait`), watching rather than sleeping.
    /// A missing object counts as deleted.
    public func deleteAndWait(
        _ resource: Resource, name: String, namespace: String?, propagation: PropagationPolicy, timeout: Duration
    ) async throws {
        do {
            try await delete(resource, name: name, namespace: namespace, propagation: propagation)
        } catch let error as KubeError where error.code == .notFound {
            return
        }
        let what = "\(resource.kind) \(name)"
        try await withDeadline(timeout, what: "waiting for \(what) to be deleted") {
            let options = ListOptions(fieldSelector: "metadata.name=\(name)")
            var attempt = 0
            while true {
                do {
                    for try await event in watch(resource, namespace: namespace, options: options) {
                        if event.type == .deleted { return }
                        if event.type == .synced {
                            // The list after (re)connecting is the truth: empty means gone.
                            if event.snapshot.isEmpty { return }
                        }
                    }
                    return
                } catch let error as KubeError where [.tooManyRequests, .serverError, .unreachable, .gone].contains(error.code) {
                    // A busy or restarting server is no reason to give up waiting; the deadline still holds.
                    attempt += 1
                    try await Task.sleep(for: .milliseconds(min(2000, 100 << min(attempt, 5))))
                }
            }
        }
    }

    func requireResource<T: KubeObject>(_ type: T.Type) throws -> Resource {
        guard let resource = Resource.of(type) else {
            throw KubeError(.unknownKind, "no built-in resource for \(T.apiVersion) \(T.kind)")
        }
        return resource
    }
}

/// An untyped object through the hand-written parser (`JSONValue.parse(json:)`), not `JSONDecoder`.
public func decodeObject(_ type: JSONValue.Type, _ data: Data, what: String) throws -> JSONValue {
    do {
        return try JSONValue.parse(json: data)
    } catch {
        let start = String(decoding: data.prefix(60), as: UTF8.self)
        throw KubeError(.badResponse, "\(what): the server's answer is not JSON: \(error) (\(data.count) bytes starting \(start.debugDescription))")
    }
}

public func decodeObject<T: Decodable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch {
        let start = String(decoding: data.prefix(60), as: UTF8.self)
        throw KubeError(.badResponse, "\(what): the server's answer is not a \(T.self) (\(data.count) bytes starting \(start.debugDescription))")
    }
}

/// Runs `body`, failing with `.timedOut` naming `what` when it takes longer than `timeout`.
func withDeadline<T: Sendable>(_ timeout: Duration, what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await Processes.withDeadline(timeout, onTimeout: { KubeError(.timedOut, "\(what): no result within \(timeout)") }, body)
}
