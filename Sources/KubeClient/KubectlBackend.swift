import Foundation
import Processes
import KubeConfig
import KubeModel
import Logging

/// `KubeAPI` through the kubectl binary, for users who trust kubectl's own auth plugins and proxies.
///
/// Each call is one kubectl process with `--context` and the same kubeconfig files (`KUBECONFIG` set to the
/// merged list), so both backends see the same cluster. Reads use `-o json`; lists and the proxy use
/// `get --raw` (kubectl's `-o json` list wrapper drops the resourceVersion a watch must start from); apply is
/// `apply --server-side --field-manager`. **Watch** is `kubectl get --raw '<path>?watch=true&…'`, which
/// kubectl streams through unchanged: the same line-delimited events, bookmarks and resourceVersion semantics
/// as the REST backend, decoded by the same `WatchLineDecoder` (`get --watch -o json` would re-list and
/// pretty-print, and cannot resume from a resourceVersion). kubectl's stderr is mapped to the same `KubeError`s.
public final class KubectlBackend: KubeAPI {
    public let configuration: KubeConfiguration
    public var defaultNamespace: String { configuration.namespace }
    /// The kubectl executable (name looked up on `PATH`, or a path).
    public let kubectl: String
    /// Deadline for one kubectl run (watches excepted).
    public let timeout: Duration
    /// The REST backend's policy for transient errors, applied to whole kubectl runs: kubectl itself retries a 429
    /// with `Retry-After`, but a 500 or 503 ends the process.
    public let retry: RetryPolicy
    /// The transient errors retried so far (a run reports them).
    public let retries: RetryLedger? = RetryLedger()
    let environment: [String: String]
    private let discovery = Discovery()
    private let logger: Logger

    /// - Parameters:
    ///   - environment: the child's environment; `KUBECONFIG` is replaced by the configuration's files.
    public init(
        configuration: KubeConfiguration, kubectl: String = "kubectl", timeout: Duration = .seconds(60), retry: RetryPolicy = RetryPolicy(),
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger = Logger(label: "kverify.kubectl")
    ) {
        self.configuration = configuration
        self.kubectl = kubectl
        self.timeout = timeout
        self.retry = retry
        var environment = environment
        if !configuration.sourceFiles.isEmpty { environment["KUBECONFIG"] = configuration.sourceFiles.joined(separator: ":") }
        self.environment = environment
        self.logger = logger
    }

    var globalArguments: [String] {
        var arguments: [String] = []
        if !configuration.isInCluster { arguments += ["--context", configuration.contextName] }
        let seconds = max(1, Int(timeout.components.seconds))
        arguments.append("--request-timeout=\(seconds)s")
        return arguments
    }

    /// Runs kubectl and returns stdout, or throws the mapped `KubeError`, retrying transient failures.
    func run(_ arguments: [String], stdin: [UInt8] = [], what: String) async throws -> Data {
        try await retryingTransient(what: what) {
            let result = try await execute(arguments, stdin: stdin, what: what)
            return result.succeeded ? .done(Data(result.stdout)) : .failed(result, mayRetry: true)
        }
    }

    /// One kubectl run's outcome for `retryingTransient`.
    enum Attempt<T> {
        case done(T)
        /// kubectl failed; `mayRetry` says whether running it again is safe if the failure was transient.
        case failed(ProcessRunner.Result, mayRetry: Bool)
    }

    /// Runs `once` until it is done, or fails with an error that is not transient, or `retry` runs out; a transient
    /// failure (a 5xx, a 429 kubectl gave up on, a reset) is counted in `retries`. Every call of this backend is safe
    /// to repeat (reads, server-side apply, delete, a review, a namespace whose AlreadyExists is success), as the
    /// REST backend's are; exec only while the command has not started.
    func retryingTransient<T>(what: String, _ once: () async throws -> Attempt<T>) async throws -> T {
        var attempt = 0
        let budgetEnd = retry.budgetEnd()
        while true {
            attempt += 1
            let (result, mayRetry): (ProcessRunner.Result, Bool)
            switch try await once() {
            case .done(let value): return value
            case .failed(let failed, let safe): (result, mayRetry) = (failed, safe)
            }
            let stderr = KubectlErrors.withoutLogLines(result.stderrExcerpt(maxCharacters: 2000))
            let delay = retry.backoff.delay(attempt: attempt)
            if mayRetry, let cause = KubectlErrors.transientCause(stderr: stderr), retry.allowsRetry(after: attempt, delay: delay, budgetEnd: budgetEnd) {
                logger.debug("\(what): \(cause), retrying in \(delay)")
                retries?.record(cause)
                try await Task.sleep(for: delay)
                continue
            }
            var error = KubectlErrors.map(stderr: stderr, exitCode: result.exitCode, what: what)
            if attempt > 1 { error.message += " (after \(attempt) attempts)" }
            throw error
        }
    }

    /// Runs kubectl and returns how it ended; only failing to run it, or its deadline, throw.
    private func execute(_ arguments: [String], stdin: [UInt8] = [], what: String) async throws -> ProcessRunner.Result {
        let all = globalArguments + arguments
        logger.debug("kubectl \(arguments.joined(separator: " "))")
        let result: ProcessRunner.Result
        do {
            // kubectl's own --request-timeout bounds each request; this deadline bounds the whole process.
            result = try await ProcessRunner.run(kubectl, arguments: all, environment: environment, stdin: stdin, timeout: timeout + .seconds(5))
        } catch {
            throw KubeError(.kubectlFailed, "\(what): cannot run kubectl: \(error)")
        }
        if result.timedOut { throw KubeError(.timedOut, "\(what): kubectl did not finish within \(timeout)") }
        return result
    }

    private func namespaceArguments(_ resource: Resource, _ namespace: String?) -> [String] {
        effectiveNamespace(resource, namespace).map { ["--namespace", $0] } ?? []
    }

    public func serverVersion() async throws -> VersionInfo {
        struct Versions: Decodable { var serverVersion: VersionInfo? }
        let data: Data
        do {
            data = try await run(["version", "--output=json"], what: "server version")
        } catch let error as KubeError {
            throw error.versionNotFoundIsNotKubernetes(server: configuration.cluster.server)
        }
        guard let version = try decodeObject(Versions.self, data, what: "kubectl version").serverVersion else {
            throw KubeError(.badResponse, "server version: kubectl printed no serverVersion")
        }
        return version
    }

    public func resource(apiVersion: String, kind: String) async throws -> Resource {
        try await discovery.resource(apiVersion: apiVersion, kind: kind) { path in
            try await run(["get", "--raw", path], what: "discovery \(path)")
        }
    }

    public func apply(_ object: JSONValue, resource: Resource, fieldManager: String, force: Bool) async throws -> Data {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        var arguments = ["apply", "--server-side", "--field-manager=\(fieldManager)", "--output=json", "--filename=-"]
        if force { arguments.append("--force-conflicts") }
        return try await run(arguments, stdin: Array(try object.jsonData()), what: "apply \(resource.kind) \(name)")
    }

    public func get(_ resource: Resource, name: String, namespace: String?) async throws -> Data {
        try await run(["get", resource.qualifiedName, name, "--output=json"] + namespaceArguments(resource, namespace),
                      what: "get \(resource.kind) \(name)")
    }

    public func list(_ resource: Resource, namespace: String?, options: ListOptions) async throws -> RawList {
        let path = pathWithQuery(resource.path(namespace: effectiveNamespace(resource, namespace)), options.queryItems)
        let data = try await run(["get", "--raw", path], what: "list \(resource.name)")
        return try RawList.decode(data, what: "list \(resource.name)")
    }

    public func watchOnce(
        _ resource: Resource, namespace: String?, options: ListOptions, resourceVersion: String, timeoutSeconds: Int
    ) async throws -> AsyncThrowingStream<WatchEvent, any Error> {
        let path = watchPath(resource, namespace: namespace, options: options, resourceVersion: resourceVersion,
                             timeoutSeconds: timeoutSeconds)
        let what = "watch \(resource.name)"
        // No --request-timeout here: the server ends the watch after timeoutSeconds.
        var arguments = globalArguments.filter { !$0.hasPrefix("--request-timeout") }
        arguments += ["get", "--raw", path]
        let chunks: AsyncThrowingStream<[UInt8], any Error>
        do {
            chunks = try ProcessRunner.stream(kubectl, arguments: arguments, environment: environment)
        } catch {
            throw KubeError(.kubectlFailed, "\(what): cannot run kubectl: \(error)")
        }
        return decodeWatch(chunks, what: what) { error in
            guard let failure = error as? ProcessRunner.StreamFailure else { return error }
            let stderr = String(decoding: failure.stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return KubectlErrors.map(stderr: stderr, exitCode: failure.exitCode, what: what)
        }
    }

    public func delete(_ resource: Resource, name: String, namespace: String?, propagation: PropagationPolicy) async throws {
        _ = try await run(
            ["delete", resource.qualifiedName, name, "--cascade=\(propagation.cascade)", "--wait=false"] + namespaceArguments(resource, namespace),
            what: "delete \(resource.kind) \(name)")
    }

    /// `get --raw` of the log subresource, the request the REST backend sends: `kubectl logs` without `--container`
    /// would pick a default container itself where the API server answers 400 for a pod with several.
    public func logs(pod: String, namespace: String?, container: String?, tailLines: Int?) async throws -> String {
        var query: [(String, String)] = []
        if let container { query.append(("container", container)) }
        if let tailLines { query.append(("tailLines", "\(tailLines)")) }
        let path = pathWithQuery(Resource.pods.path(namespace: namespace ?? defaultNamespace, name: pod, subresource: "log"), query)
        return String(decoding: try await run(["get", "--raw", path], what: "logs of pod \(pod)"), as: UTF8.self)
    }

    public func proxyGet(pod: String, port: Int, path: String, namespace: String?) async throws -> [UInt8] {
        let proxyPath = Resource.pods.path(namespace: namespace ?? defaultNamespace, name: "\(pod):\(port)", subresource: "proxy")
            + "/" + path.drop { $0 == "/" }
        return Array(try await run(["get", "--raw", proxyPath], what: "proxy GET \(proxyPath)"))
    }

    /// Creates a `SelfSubjectAccessReview` with `kubectl create -f - -o json` (JSON, as the REST backend
    /// posts it; `kubectl auth can-i` would answer only yes/no and speaks protobuf).
    /// Client-side validation is off: it would fetch an OpenAPI schema for a throwaway review object.
    public func canI(_ attributes: SelfSubjectAccessReview.ResourceAttributes) async throws -> Bool? {
        let review = try JSONValue.encoded(SelfSubjectAccessReview(attributes))
        do {
            let data = try await run(["create", "--validate=false", "--filename=-", "--output=json"], stdin: Array(try review.jsonData()),
                                     what: "SelfSubjectAccessReview \(attributes.summary)")
            return try decodeObject(SelfSubjectAccessReview.self, data, what: "SelfSubjectAccessReview").status?.allowed
        } catch let error as KubeError where error.code == .notFound || error.code == .unknownKind {
            return nil  // the server has no SelfSubjectAccessReview API
        }
    }

    /// Creates the namespace with `kubectl create -f -` (JSON; `create namespace` sends protobuf). An existing
    /// namespace is fine.
    public func createNamespace(_ name: String) async throws {
        let namespace = try JSONValue.encoded(Namespace(name: name)).merging(["apiVersion": "v1", "kind": "Namespace"])
        do {
            _ = try await run(["create", "--filename=-", "--output=json"], stdin: Array(try namespace.jsonData()),
                              what: "create Namespace \(name)")
        } catch let error as KubeError where error.code == .alreadyExists {
            return
        }
    }
}

extension KubectlBackend {
    /// `kubectl exec POD [-c CONTAINER] -- COMMAND`. kubectl exits with the command's code and then prints
    /// `command terminated with exit code N` on its stderr (after the command's own stderr); that line tells a
    /// command's failure from kubectl's own, and is removed from the stderr returned. Any other non-zero exit is
    /// kubectl's failure, mapped like every other call's.
    public func exec(pod: String, namespace: String?, container: String?, command: [String], timeout: Duration) async throws -> ExecResult {
        guard !command.isEmpty else { throw KubeError(.badRequest, "exec in pod \(pod): no command") }
        let what = "exec in pod \(pod)" + (container.map { " container \($0)" } ?? "")
        var arguments = globalArguments.filter { !$0.hasPrefix("--request-timeout") }
        arguments += ["exec", pod, "--namespace", namespace ?? defaultNamespace]
        if let container { arguments += ["--container", container] }
        arguments += ["--"] + command
        return try await retryingTransient(what: what) {
            let result: ProcessRunner.Result
            do {
                result = try await ProcessRunner.run(kubectl, arguments: arguments, environment: environment, stdin: [], timeout: timeout)
            } catch {
                throw KubeError(.kubectlFailed, "\(what): cannot run kubectl: \(error)")
            }
            if result.timedOut { throw KubeError(.timedOut, "\(what): no result within \(timeout)") }
            if result.succeeded { return .done(ExecResult(stdout: result.stdout, stderr: result.stderr, exitCode: 0)) }
            var stderr = String(decoding: result.stderr, as: UTF8.self)
            let marker = "command terminated with exit code \(result.exitCode)"
            if result.signal == nil, let range = stderr.range(of: marker, options: .backwards),
               stderr[range.upperBound...].allSatisfy(\.isWhitespace) {
                stderr.removeSubrange(range.lowerBound..<stderr.endIndex)
                return .done(ExecResult(stdout: result.stdout, stderr: Array(stderr.utf8), exitCode: result.exitCode))
            }
            // kubectl's own failure; run again only if the command cannot have started (`execMayRetry`).
            return .failed(result, mayRetry: KubectlErrors.execMayRetry(stdout: result.stdout, stderr: stderr))
        }
    }
}

/// Maps kubectl's stderr to `KubeError` codes. kubectl prints `Error from server (Reason): message` for a
/// `Status`, and Go error strings for transport failures.
enum KubectlErrors {
    /// The transient error a failed kubectl run met, named as the REST backend counts it ("HTTP 503",
    /// "connection reset"); nil when the failure is not worth another run.
    static func transientCause(stderr: String) -> String? {
        if let reason = serverReason(in: stderr) {
            return switch reason {
            case "TooManyRequests": "HTTP 429"
            case "InternalError": "HTTP 500"
            case "ServiceUnavailable": "HTTP 503"
            case "ServerTimeout", "Timeout": "HTTP 504"
            default: nil
            }
        }
        let lower = stderr.lowercased()
        return genericTransients.first { lower.contains($0.text) }?.cause
    }

    /// client-go's words for a transient status met without a `Status` body, or before the request itself
    /// (discovery, the OpenAPI schema `--validate` needs), and for a dropped connection.
    private static let genericTransients: [(text: String, cause: String)] = [
        ("has prevented the request from succeeding", "HTTP 500"),
        ("the server is currently unable to handle the request", "HTTP 503"),
        ("has asked us to try again later", "HTTP 429"),
        ("unable to return a response in the time allotted", "HTTP 504"),
        ("connection reset", "connection reset"),
        // A connection that ended mid-response: Go's io.ErrUnexpectedEOF, over a WebSocket "close 1006 (abnormal
        // closure): unexpected EOF".
        ("unexpected eof", "connection lost"),
        // A 5xx for /openapi/v3 makes kubectl fall back to /openapi/v2; its failure is what gets printed.
        ("failed to download openapi", "OpenAPI download failed"),
    ]

    /// stderr without the klog lines client-go logs on its way (`E1201 05:10:20.419051 18692 memcache.go:265] …`,
    /// a discovery hiccup it recovered from), unless nothing else is left.
    static func withoutLogLines(_ stderr: String) -> String {
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.filter { $0.wholeMatch(of: /[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [^\]]+\] .*/) == nil }
        let text = kept.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? stderr : text
    }

    /// `Reason` of the first `Error from server (Reason)` line.
    /// Whether a failed `kubectl exec` may run again: only when its command cannot have started — nothing on stdout,
    /// and a failure from before the stream: a Status for kubectl's GET of the pod ("Error from server (Reason)") or
    /// for the upgrade ("unable to upgrade connection"). A connection lost mid-stream is not retried, though it is
    /// transient: the command may have run (a signal sent), and running it again would run it twice.
    static func execMayRetry(stdout: [UInt8], stderr: String) -> Bool {
        guard stdout.isEmpty else { return false }
        let text = withoutLogLines(stderr)
        return serverReason(in: text) != nil || text.contains("unable to upgrade connection")
    }

    static func serverReason(in stderr: String) -> Substring? {
        guard let range = stderr.range(of: #"Error from server \(([A-Za-z]+)\)"#, options: .regularExpression) else { return nil }
        return stderr[range].dropFirst("Error from server (".count).dropLast()
    }

    static func map(stderr: String, exitCode: Int32, what: String) -> KubeError {
        let text = stderr.isEmpty ? "kubectl exited with status \(exitCode) and printed nothing" : stderr
        let message = "\(what): \(text)"
        if let reason = serverReason(in: text) {
            let code: KubeError.Code = switch reason {
            case "NotFound": .notFound
            case "AlreadyExists": .alreadyExists
            case "Conflict": .conflict
            case "Invalid": .invalid
            case "Forbidden": .forbidden
            case "Unauthorized": .unauthorized
            case "Gone", "Expired", "ResourceExpired": .gone
            case "TooManyRequests": .tooManyRequests
            case "InternalError", "ServiceUnavailable", "ServerTimeout", "Timeout": .serverError
            case "BadRequest", "MethodNotAllowed", "NotAcceptable", "UnsupportedMediaType", "RequestEntityTooLarge": .badRequest
            default: .kubectlFailed
            }
            return KubeError(code, message + KubeError.hint(code))
        }
        let lower = text.lowercased()
        let rules: [(KubeError.Code, [String])] = [
            (.conflict, ["apply failed with", "conflict with"]),
            (.invalid, ["is invalid"]),
            // A user without credentials makes kubectl prompt for basic auth; with stdin closed that ends in EOF.
            (.unauthorized, ["getting credentials", "exec plugin", "please enter username"]),
            (.unauthorized, ["must be logged in", "unauthorized"]),
            (.forbidden, ["forbidden"]),
            (.tlsFailed, ["x509:", "tls:", "certificate", "handshake"]),
            (.timedOut, ["client.timeout", "deadline exceeded", "i/o timeout", "timeout awaiting", "timed out"]),
            (.unreachable, ["connection refused", "was refused", "no such host", "unable to connect", "connection reset", "eof"]),
            (.unknownKind, ["doesn't have a resource type", "no matches for kind", "could not find the requested resource"]),
            (.badResponse, ["couldn't get current server api group list", "unknown (get", "invalid character", "cannot unmarshal"]),
            (.gone, ["too old resource version", "expired"]),
            // kubectl exec checks the container itself and prints the API server's words without a Status.
            (.badRequest, ["is not valid for pod", "is not running (phase"]),
        ]
        for (code, needles) in rules where needles.contains(where: lower.contains) {
            return KubeError(code, message + KubeError.hint(code))
        }
        return KubeError(.kubectlFailed, message)
    }
}

extension RawList {
    static func decode(_ data: Data, what: String) throws -> RawList {
        // The items' bytes are cut out of the list, not parsed and encoded again: the consumer decodes each once.
        let scanned: RawList? = data.withUnsafeBytes { bytes in
            guard let members = JSONScan.members(bytes) else { return nil }
            var items: [Data] = []
            if let range = members.last(where: { $0.key == "items" })?.value {
                let array = UnsafeRawBufferPointer(rebasing: bytes[range])
                if array.count == 4, array.elementsEqual("null".utf8) {
                } else {
                    guard let elements = JSONScan.elements(array) else { return nil }
                    items = elements.map { Data(array[$0]) }
                }
            }
            var version: String?
            if let range = members.last(where: { $0.key == "metadata" })?.value {
                let metadata = UnsafeRawBufferPointer(rebasing: bytes[range])
                guard let fields = JSONScan.members(metadata) else { return nil }
                if let value = fields.last(where: { $0.key == "resourceVersion" })?.value {
                    guard let text = JSONScan.plainString(metadata, value) else { return nil }
                    version = text
                }
            }
            return RawList(items: items, resourceVersion: version)
        }
        if let scanned { return scanned }
        struct Envelope: Decodable {
            var metadata: ListMeta?
            var items: [JSONValue]?
        }
        let envelope = try decodeObject(Envelope.self, data, what: what)
        return RawList(items: try (envelope.items ?? []).map { try $0.jsonData() }, resourceVersion: envelope.metadata?.resourceVersion)
    }
}

/// Turns a stream of body chunks into watch events, mapping the transport's errors with `mapError`.
func decodeWatch(
    _ chunks: AsyncThrowingStream<[UInt8], any Error>, what: String, mapError: @escaping @Sendable (any Error) -> any Error
) -> AsyncThrowingStream<WatchEvent, any Error> {
    let (events, continuation) = AsyncThrowingStream<WatchEvent, any Error>.makeStream()
    let task = Task {
        var decoder = WatchLineDecoder()
        do {
            for try await chunk in chunks {
                for event in try decoder.feed(chunk) { continuation.yield(event) }
            }
            for event in try decoder.finish() { continuation.yield(event) }
            continuation.finish()
        } catch let error as KubeError {
            continuation.finish(throwing: error)
        } catch {
            continuation.finish(throwing: mapError(error))
        }
    }
    continuation.onTermination = { _ in task.cancel() }
    return events
}
