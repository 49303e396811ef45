import Foundation
import SimFaults
import SimStore
import KubeModel

/// What the server sends back for one request; the I/O shell (`APIServer`) turns it into bytes.
package enum Reply: Sendable {
    case body(status: Int, contentType: String, Data)
    /// A chunked stream of watch events.
    case watch(WatchPlan)
    /// Forward the request to a process listening on `host:port` (pods/proxy, services/proxy).
    case proxy(host: String, port: Int, path: String)
    /// A container's log file, optionally followed while the pod exists.
    case logs(LogPlan)

    static func json(_ value: JSONValue, status: Int = 200, contentType: String = "application/json") -> Reply {
        .body(status: status, contentType: contentType, value.data)
    }

    static func error(_ error: APIError) -> Reply { .json(error.status, status: error.code) }
}

package struct WatchPlan: Sendable {
    var resource: ResourceType
    var subscription: ObjectStore.Subscription?
    /// Set when the watch cannot start (410 Expired): sent as one ERROR event, as the real watch cache does.
    var failure: APIError?
    var asTable: Bool
    var includeObject: String?
    var bookmarks: Bool
    var timeoutSeconds: Int
    /// The client resumes from a resourceVersion (rather than starting with a replay of current objects).
    var resumed = false
}

package struct LogPlan: Sendable {
    var file: URL
    var follow: Bool
    var tailLines: Int?
    var pod: (namespace: String, name: String)
}

/// Maps requests onto discovery, the object store and the subresources; pure apart from the store.
package struct APIRouter: Sendable {
    let store: ObjectStore
    let serverAddress: String
    /// Where the kubelet keeps container logs: `<logDirectory>/<namespace>_<pod>_<uid prefix>_<container>.log`.
    let logDirectory: URL
    /// How long a watch without `timeoutSeconds` lasts (the real server picks 30–60 minutes).
    let defaultWatchSeconds: Int

    package init(store: ObjectStore, serverAddress: String, logDirectory: URL, defaultWatchSeconds: Int) {
        self.store = store
        self.serverAddress = serverAddress
        self.logDirectory = logDirectory
        self.defaultWatchSeconds = defaultWatchSeconds
    }

    func route(_ request: APIRequest) -> Reply {
        do {
            if case .serviceAccount(let subject) = request.identity, let denied = RBACAuthorizer(store: store).check(request, as: subject) {
                throw denied
            }
            return try dispatch(request)
        } catch let error as APIError {
            return .error(error)
        } catch {
            return .error(.internalError(String(describing: error)))
        }
    }

    private func dispatch(_ request: APIRequest) throws -> Reply {
        let segments = request.segments
        switch (request.method, segments.count, segments.first) {
        case ("GET", 1, "version"): return .json(Discovery.version)
        case ("GET", 1, "healthz"), ("GET", 1, "livez"), ("GET", 1, "readyz"):
            return .body(status: 200, contentType: "text/plain; charset=utf-8", Data("ok".utf8))
        case ("GET", 1, "api"):
            return Discovery.wantsAggregated(request.accept)
                ? .json(Discovery.aggregated(core: true), contentType: Discovery.aggregatedContentType)
                : .json(Discovery.apiVersions(serverAddress: serverAddress))
        case ("GET", 1, "apis"):
            return Discovery.wantsAggregated(request.accept)
                ? .json(Discovery.aggregated(core: false), contentType: Discovery.aggregatedContentType)
                : .json(Discovery.apiGroupList)
        case ("GET", 2, "api"):
            guard let list = Discovery.resourceList(group: "", version: segments[1]) else { throw APIError.pathNotFound }
            return .json(list)
        case ("GET", 2, "apis"):
            guard let group = Discovery.apiGroup(segments[1]) else { throw APIError.pathNotFound }
            return .json(group)
        case ("GET", 3, "apis"):
            guard let list = Discovery.resourceList(group: segments[1], version: segments[2]) else { throw APIError.pathNotFound }
            return .json(list)
        case ("POST", 4, "apis") where segments[1] == "authorization.k8s.io" && segments[3] == "selfsubjectaccessreviews":
            // Every client of the sim holds the admin certificate (system:masters), so every review is allowed —
            // what a real server answers for that identity.
            // kubectl auth can-i sends protobuf, which the sim does not decode for this kind; the answer does not
            // depend on the question, so it gets the same verdict without its spec echoed.
            let protobuf = request.contentType.hasPrefix("application/vnd.kubernetes.protobuf")
            var review: JSONValue = protobuf ? ["spec": [:]] : try decodeBody(request, ResourceCatalog.all[0], checkKind: false)
            guard review["spec"]?.objectValue != nil else {
                throw APIError(code: 422, reason: "Invalid", message: "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec: Required value")
            }
            review.set(["apiVersion"], to: "authorization.k8s.io/v1")
            review.set(["kind"], to: "SelfSubjectAccessReview")
            review.set(["status"], to: ["allowed": true, "reason": "kverify sim: every client is system:masters"])
            return .json(review, status: 201)
        case ("GET", _, "openapi"):
            if segments == ["openapi", "v3"] { return .json(Discovery.openAPIIndex) }
            guard let document = Discovery.openAPIDocument(request.path) else { throw APIError.pathNotFound }
            return .json(document)
        default:
            guard let target = ResourceTarget(segments: segments) else { throw APIError.pathNotFound }
            return try resourceRequest(request, target)
        }
    }

    // MARK: Resources

    private func resourceRequest(_ request: APIRequest, _ target: ResourceTarget) throws -> Reply {
        let resource = target.resource
        guard let name = target.name else { return try collectionRequest(request, target) }
        let manager = request.query["fieldManager"] ?? Self.defaultManager(request)
        switch (target.subresource, request.method) {
        case (nil, "GET"), ("status", "GET"):
            let object = try store.get(resource, namespace: target.namespace, name: name)
            if Tables.wanted(request.accept) {
                return .json(Tables.table(resource, items: [object], resourceVersion: store.currentResourceVersion,
                                          includeObject: request.query["includeObject"]), contentType: Tables.contentType)
            }
            return .json(object)
        case (nil, "PUT"), ("status", "PUT"), ("finalize", "PUT"):
            let body = try decodeBody(request, resource)
            return .json(try store.update(resource, namespace: target.namespace, name: name, body: body,
                                          statusOnly: target.subresource == "status", manager: manager))
        case (nil, "PATCH"), ("status", "PATCH"):
            let type: ObjectStore.PatchType
            let body: JSONValue
            switch request.contentType.split(separator: ";").first.map(String.init) ?? "" {
            case "application/merge-patch+json": (type, body) = (.merge, try decodeBody(request, resource))
            case "application/strategic-merge-patch+json": (type, body) = (.strategic, try decodeBody(request, resource))
            case "application/json-patch+json": (type, body) = (.json, try decodeBody(request, resource))
            case "application/apply-patch+yaml", "application/apply-patch+json":
                guard let fieldManager = request.query["fieldManager"], !fieldManager.isEmpty else {
                    throw APIError(code: 400, reason: "BadRequest", message: "PATCH \(request.path): fieldManager is required for apply requests")
                }
                body = try decodeBody(request, resource, yaml: true)
                type = .apply(force: request.flag("force"))
                let result = try store.patch(resource, namespace: target.namespace, name: name, type: type, body: body,
                                             statusOnly: target.subresource == "status", manager: fieldManager)
                return .json(result.object, status: result.created ? 201 : 200)
            default:
                throw APIError.unsupportedMediaType(request.contentType)
            }
            let result = try store.patch(resource, namespace: target.namespace, name: name, type: type, body: body,
                                         statusOnly: target.subresource == "status", manager: manager)
            return .json(result.object)
        case (nil, "DELETE"):
            var options = DeleteOptions()
            if !request.body.isEmpty {
                let body = try decodeBody(request, resource, checkKind: false)
                if let policy = body["propagationPolicy"]?.stringValue {
                    guard let parsed = DeleteOptions.Propagation(rawValue: policy) else {
                        throw APIError(code: 422, reason: "Invalid", message: "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"\(policy)\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"")
                    }
                    options.propagation = parsed
                }
                if body["orphanDependents"] == .bool(true) { options.propagation = .orphan }
                options.preconditionUID = body.value(at: ["preconditions", "uid"])?.stringValue
                options.preconditionResourceVersion = body.value(at: ["preconditions", "resourceVersion"])?.stringValue
                options.gracePeriodSeconds = body["gracePeriodSeconds"]?.intValue
            }
            if let grace = request.query["gracePeriodSeconds"].flatMap({ Int($0) }) { options.gracePeriodSeconds = grace }
            if let policy = request.query["propagationPolicy"], let parsed = DeleteOptions.Propagation(rawValue: policy) {
                options.propagation = parsed
            }
            let deleted = try store.delete(resource, namespace: target.namespace, name: name, options: options)
            if resource.plural == "namespaces" {
                // The namespace controller empties a Terminating namespace shortly after, as the real one does.
                let store = self.store
                Task(executorPreference: SimExecutor.shared) {
                    try? await Task.sleep(for: .milliseconds(200))
                    store.finishNamespaceTermination(name)
                }
            }
            return .json(deleted)
        case ("log", "GET"):
            return try logs(request, target, name)
        case ("proxy", _):
            return try proxy(request, target, name)
        case ("exec", _), ("attach", _), ("portforward", _):
            // Reached only without a WebSocket upgrade (APIServer upgrades the ones it serves): plain requests and
            // the legacy SPDY/3.1 upgrade, which kubectl prints as "unable to upgrade connection: <message>".
            let upgrade = request.headers[RefusedUpgradeFilter.header.lowercased()].map { " (this request asked for \($0))" } ?? ""
            if target.subresource == "portforward" {
                throw APIError(code: 400, reason: "BadRequest",
                               message: "Upgrade request required: pods/portforward is served over a WebSocket (\(StreamRequest.portForwardProtocol)) or SPDY/3.1 with X-Stream-Protocol-Version: \(StreamRequest.legacyPortForwardProtocol)\(upgrade)")
            }
            throw APIError(code: 400, reason: "BadRequest",
                           message: "Upgrade request required: the kverify sim serves pods/\(target.subresource ?? "") only over a WebSocket (v5.channel.k8s.io), not SPDY\(upgrade); kubectl 1.30+ uses it unless KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false")
        default:
            throw APIError.methodNotAllowed(request.method, resource.plural)
        }
    }

    private func collectionRequest(_ request: APIRequest, _ target: ResourceTarget) throws -> Reply {
        let resource = target.resource
        switch request.method {
        case "GET":
            let labels = try LabelQuery(parsing: request.query["labelSelector"] ?? "")
            let fieldText = request.query["fieldSelector"] ?? ""
            let fields = fieldText.isEmpty ? nil : try FieldQuery(parsing: fieldText, for: resource)
            if request.flag("watch") {
                return .watch(watchPlan(request, target, labels: labels, fields: fields))
            }
            let (items, version) = store.list(resource, namespace: target.namespace, labels: labels, fields: fields)
            if Tables.wanted(request.accept) {
                return .json(Tables.table(resource, items: items, resourceVersion: version,
                                          includeObject: request.query["includeObject"]), contentType: Tables.contentType)
            }
            return .json(["kind": .string(resource.kind + "List"), "apiVersion": .string(resource.groupVersion),
                          "metadata": ["resourceVersion": .string(String(version))], "items": .array(items)])
        case "POST":
            if resource.namespaced, target.namespace == nil { throw APIError.methodNotAllowed(request.method, resource.plural) }
            let body = try decodeBody(request, resource)
            let manager = request.query["fieldManager"] ?? Self.defaultManager(request)
            return .json(try store.create(resource, namespace: target.namespace, body: body, manager: manager), status: 201)
        default:
            throw APIError.methodNotAllowed(request.method, resource.plural)
        }
    }

    private func watchPlan(_ request: APIRequest, _ target: ResourceTarget, labels: LabelQuery, fields: FieldQuery?) -> WatchPlan {
        let version = request.query["resourceVersion"] ?? ""
        let start: ObjectStore.WatchStart = (version.isEmpty || version == "0") ? .current : .after(Int(version) ?? -1)
        var plan = WatchPlan(resource: target.resource, subscription: nil, failure: nil, asTable: Tables.wanted(request.accept),
                             includeObject: request.query["includeObject"], bookmarks: request.flag("allowWatchBookmarks"),
                             timeoutSeconds: Int(request.query["timeoutSeconds"] ?? "") ?? defaultWatchSeconds)
        if case .after = start { plan.resumed = true }
        if case .after(let number) = start, number < 0 {
            plan.failure = APIError.badRequest("invalid resource version \"\(version)\"")
            return plan
        }
        do {
            plan.subscription = try store.watch(target.resource, namespace: target.namespace, labels: labels, fields: fields, start: start)
        } catch let error as APIError {
            plan.failure = error
        } catch {
            plan.failure = .internalError(String(describing: error))
        }
        return plan
    }

    // MARK: Subresources

    private func logs(_ request: APIRequest, _ target: ResourceTarget, _ name: String) throws -> Reply {
        let pod = try store.get(target.resource, namespace: target.namespace, name: name)
        let containers = (pod.value(at: ["spec", "containers"])?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        let initContainers = (pod.value(at: ["spec", "initContainers"])?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        let container: String
        if let requested = request.query["container"], !requested.isEmpty {
            guard containers.contains(requested) || initContainers.contains(requested) else {
                throw APIError.badRequest("container \(requested) is not valid for pod \(name)")
            }
            container = requested
        } else if containers.count == 1 {
            container = containers[0]
        } else {
            throw APIError.badRequest("a container name must be specified for pod \(name), choose one of: [\(containers.joined(separator: " "))]")
        }
        let namespace = target.namespace ?? "default"
        // The uid keeps a re-created pod of the same name from reading (or racing) its predecessor's log.
        let uid = pod.string(at: "metadata", "uid")?.prefix(8) ?? ""
        var file = logDirectory.appendingPathComponent("\(namespace)_\(name)_\(uid)_\(container).log")
        if request.flag("previous") {
            file = logDirectory.appendingPathComponent("\(namespace)_\(name)_\(uid)_\(container).log.previous")
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw APIError.badRequest("previous terminated container \"\(container)\" in pod \"\(name)\" not found")
            }
        }
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw APIError.badRequest("container \"\(container)\" in pod \"\(name)\" is waiting to start: ContainerCreating")
        }
        return .logs(LogPlan(file: file, follow: request.flag("follow"), tailLines: request.query["tailLines"].flatMap { Int($0) },
                             pod: (namespace, name)))
    }

    /// Resolves `pods/NAME[:PORT]/proxy/...` and `services/NAME[:PORT]/proxy/...` to a process address.
    private func proxy(_ request: APIRequest, _ target: ResourceTarget, _ nameAndPort: String) throws -> Reply {
        var parts = nameAndPort.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3 { parts.removeFirst() }  // `http:name:port`
        let name = parts[0], portText = parts.count > 1 ? parts[1] : ""
        let path = "/" + target.rest.joined(separator: "/") + (request.path.hasSuffix("/") && !target.rest.isEmpty ? "/" : "")
            + (request.rawQuery.map { "?\($0)" } ?? "")
        switch target.resource.plural {
        case "pods":
            let pod = try store.get(target.resource, namespace: target.namespace, name: name)
            guard let ip = pod.string(at: "status", "podIP"), !ip.isEmpty else {
                throw APIError.badRequest("address not allowed")
            }
            let port = try PodPorts.containerPort(portText, in: pod) ?? 80
            return .proxy(host: ip, port: port, path: path)
        case "services":
            let service = try store.get(target.resource, namespace: target.namespace, name: name)
            let ports = service.value(at: ["spec", "ports"])?.arrayValue ?? []
            guard let port = portText.isEmpty ? ports.first
                    : ports.first(where: { $0["name"]?.stringValue == portText || $0["port"]?.intValue == Int(portText) }) else {
                throw APIError.serviceUnavailable("no endpoints available for service \"\(name)\"")
            }
            let selector = (service.value(at: ["spec", "selector"])?.objectValue ?? [:]).compactMapValues(\.stringValue)
            let pods = store.list(ResourceCatalog.all[2], namespace: target.namespace, labels: LabelQuery(matchLabels: selector)).items
            let ready = pods.filter { pod in
                pod.string(at: "status", "podIP") != nil && pod.string(at: "metadata", "deletionTimestamp") == nil
                    && (pod.value(at: ["status", "conditions"])?.arrayValue ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
            }
            guard !selector.isEmpty, let chosen = ready.randomElement(), let ip = chosen.string(at: "status", "podIP") else {
                throw APIError.serviceUnavailable("no endpoints available for service \"\(name)\"")
            }
            let targetPort: Int
            switch port["targetPort"] {
            case .string(let named)?: targetPort = try PodPorts.containerPort(named, in: chosen) ?? 80
            case let value?: targetPort = value.intValue ?? 80
            case nil: targetPort = port["port"]?.intValue ?? 80
            }
            return .proxy(host: ip, port: targetPort, path: path)
        default:
            throw APIError.methodNotAllowed(request.method, target.resource.plural)
        }
    }

    // MARK: Bodies

    /// Decodes a JSON (or, for apply, YAML) body; a malformed one is 400 BadRequest worded like the real decoder.
    private func decodeBody(_ request: APIRequest, _ resource: ResourceType, yaml: Bool = false, checkKind: Bool = true) throws -> JSONValue {
        if request.contentType.hasPrefix("application/vnd.kubernetes.protobuf") {
            return try ProtobufBody.decode(request.body)
        }
        let text = String(decoding: request.body, as: UTF8.self)
        let value: JSONValue
        do {
            if yaml || request.contentType.hasPrefix("application/yaml") {
                value = try JSONValue.parse(yaml: text)
            } else {
                value = try JSONValue.parse(json: request.body)
            }
        } catch {
            throw APIError.badRequest("the object provided is unrecognized (must be of type \(resource.kind)): couldn't get version/kind; json parse error: \(Self.describe(error)) (\(text.prefix(80)))")
        }
        guard value.objectValue != nil || value.arrayValue != nil else {
            throw APIError.badRequest("the object provided is unrecognized (must be of type \(resource.kind)): couldn't get version/kind; json parse error: expected an object (\(text.prefix(80)))")
        }
        return value
    }

    static func describe(_ error: any Error) -> String {
        if let decoding = error as? DecodingError {
            switch decoding {
            case .dataCorrupted(let context): return (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String ?? context.debugDescription
            default: return String(describing: decoding)
            }
        }
        return String(describing: error)
    }

    /// The manager recorded for writes without `fieldManager`: the client's name from its User-Agent.
    static func defaultManager(_ request: APIRequest) -> String {
        let agent = request.headers["user-agent"] ?? "unknown"
        return String(agent.split(separator: "/").first ?? "unknown")
    }
}
