import Foundation
import Synchronization
import HTTP
import KubeConfig
import KubeModel
import Logging

/// `KubeAPI` straight to the API server over libcurl (the `HTTP` module): one multi handle per credential set,
/// so concurrent calls share connections (HTTP/2 multiplexed when offered); certificates and keys are passed
/// as memory blobs; every call has a deadline; idempotent calls are retried on 429 (honouring `Retry-After`),
/// 5xx and connection resets with backoff and jitter; `Status` bodies become typed `KubeError`s.
public final class RESTBackend: KubeAPI {
    public let configuration: KubeConfiguration
    public var defaultNamespace: String { configuration.namespace }
    public let credentials: CredentialProvider
    /// Deadline of one attempt (connection to last byte).
    public let requestTimeout: Duration
    /// A watch request is cut this long after the `timeoutSeconds` it asked the server for.
    public let watchGrace: Duration
    public let retry: RetryPolicy
    /// The transient errors retried so far (a run reports them).
    public let retries: RetryLedger? = RetryLedger()
    /// Bodies larger than this fail with `.badResponse` instead of filling memory.
    public let maxResponseBytes: Int
    private let logger: Logger
    private let discovery = Discovery()
    /// The client for the current TLS material; replaced when an exec plugin hands out a new certificate.
    private let clients = Mutex<[TLSKey: HTTPClient]>([:])
    /// `https://host:port` to put in URLs (the tls-server-name host, if set).
    private let baseURL: String
    private let connectTo: [String]

    private struct TLSKey: Hashable {
        var certificate: [UInt8]?
        var key: [UInt8]?
    }

    public init(
        configuration: KubeConfiguration, credentials: CredentialProvider? = nil, requestTimeout: Duration = .seconds(30),
        watchGrace: Duration = .seconds(30), retry: RetryPolicy = RetryPolicy(), maxResponseBytes: Int = 64 << 20,
        logger: Logger = Logger(label: "kverify.kube.rest")
    ) {
        self.configuration = configuration
        self.credentials = credentials ?? CredentialProvider(configuration)
        self.requestTimeout = requestTimeout
        self.watchGrace = watchGrace
        self.retry = retry
        self.maxResponseBytes = maxResponseBytes
        self.logger = logger
        var server = configuration.cluster.server
        while server.hasSuffix("/") { server.removeLast() }
        var connectTo: [String] = []
        // tls-server-name: put that name in the URL (so SNI and verification use it) and connect to the real host.
        if let name = configuration.cluster.tlsServerName, let url = URLComponents(string: server), let host = url.host {
            let port = url.port ?? (url.scheme == "http" ? 80 : 443)
            connectTo = ["\(name):\(port):\(host):\(port)"]
            var rewritten = url
            rewritten.host = name
            server = rewritten.string ?? server
        }
        baseURL = server
        self.connectTo = connectTo
    }

    deinit {
        for client in clients.withLock({ Array($0.values) }) { client.shutdown() }
    }

    /// Stops the HTTP loop threads; later calls fail.
    public func shutdown() {
        for client in clients.withLock({ clients in defer { clients.removeAll() }; return Array(clients.values) }) { client.shutdown() }
    }

    // MARK: KubeAPI

    public func serverVersion() async throws -> VersionInfo {
        let body: [UInt8]
        do {
            body = try await send("GET", "/version", what: "server version")
        } catch let error as KubeError {
            throw error.versionNotFoundIsNotKubernetes(server: configuration.cluster.server)
        }
        do {
            return try decodeObject(VersionInfo.self, Data(body), what: "GET /version")
        } catch let error as KubeError {
            // The error quotes the start of the body: a page that is not Kubernetes may echo the credential sent.
            throw error.scrubbing(credentialsIn: try await prepare().1)
        }
    }

    public func resource(apiVersion: String, kind: String) async throws -> Resource {
        try await discovery.resource(apiVersion: apiVersion, kind: kind) { path in
            Data(try await send("GET", path, what: "discovery \(path)"))
        }
    }

    public func apply(_ object: JSONValue, resource: Resource, fieldManager: String, force: Bool) async throws -> Data {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        let namespace = object["metadata"]?["namespace"]?.stringValue
        let path = pathWithQuery(
            resource.path(namespace: effectiveNamespace(resource, namespace), name: name),
            [("fieldManager", fieldManager), ("fieldValidation", "Strict"), ("force", force ? "true" : "false")])
        // Server-side apply is idempotent: sending the same intent twice gives the same object.
        return Data(try await send(
            "PATCH", path, body: Array(try object.jsonData()), contentType: "application/apply-patch+yaml",
            idempotent: true, what: "apply \(resource.kind) \(name)"))
    }

    public func get(_ resource: Resource, name: String, namespace: String?) async throws -> Data {
        Data(try await send("GET", resource.path(namespace: effectiveNamespace(resource, namespace), name: name), what: "get \(resource.kind) \(name)"))
    }

    public func list(_ resource: Resource, namespace: String?, options: ListOptions) async throws -> RawList {
        let path = pathWithQuery(resource.path(namespace: effectiveNamespace(resource, namespace)), options.queryItems)
        return try RawList.decode(Data(try await send("GET", path, what: "list \(resource.name)")), what: "list \(resource.name)")
    }

    public func watchOnce(
        _ resource: Resource, namespace: String?, options: ListOptions, resourceVersion: String, timeoutSeconds: Int
    ) async throws -> AsyncThrowingStream<WatchEvent, any Error> {
        let path = watchPath(resource, namespace: namespace, options: options, resourceVersion: resourceVersion,
                             timeoutSeconds: timeoutSeconds)
        let what = "watch \(resource.name)"
        let (client, headers) = try await prepare()
        var request = HTTPRequest(
            method: "GET", url: baseURL + path, headers: headers + [HTTPHeader("Accept", "application/json")],
            timeout: .seconds(timeoutSeconds) + watchGrace, connectTimeout: min(requestTimeout, .seconds(10)),
            maxResponseBytes: Int.max)
        request.lowSpeedTimeout = nil
        let response: HTTPStreamingResponse
        do {
            response = try await client.stream(request)
        } catch {
            throw map(error, what: what)
        }
        guard response.status == 200 else {
            var body: [UInt8] = []
            for try await chunk in response.body where body.count < 1 << 20 { body += chunk }
            throw KubeError.from(httpStatus: response.status, body: body, contentType: response.header("Content-Type"), what: what)
                .scrubbing(credentialsIn: headers)
        }
        if let type = response.header("Content-Type"), !type.contains("json") {
            throw KubeError(.badResponse, "\(what): HTTP 200 with \(type) instead of a JSON watch stream")
        }
        return decodeWatch(response.body, what: what) { [self] error in map(error, what: what) }
    }

    public func delete(_ resource: Resource, name: String, namespace: String?, propagation: PropagationPolicy) async throws {
        let options = #"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"\#(propagation.rawValue)"}"#
        _ = try await send(
            "DELETE", resource.path(namespace: effectiveNamespace(resource, namespace), name: name), body: Array(options.utf8),
            contentType: "application/json", idempotent: true, what: "delete \(resource.kind) \(name)")
    }

    public func logs(pod: String, namespace: String?, container: String?, tailLines: Int?) async throws -> String {
        var query: [(String, String)] = []
        if let container { query.append(("container", container)) }
        if let tailLines { query.append(("tailLines", "\(tailLines)")) }
        let path = pathWithQuery(Resource.pods.path(namespace: namespace ?? defaultNamespace, name: pod, subresource: "log"), query)
        return String(decoding: try await send("GET", path, accept: "*/*", what: "logs of pod \(pod)"), as: UTF8.self)
    }

    public func proxyGet(pod: String, port: Int, path: String, namespace: String?) async throws -> [UInt8] {
        let proxyPath = Resource.pods.path(namespace: namespace ?? defaultNamespace, name: "\(pod):\(port)", subresource: "proxy")
            + "/" + path.drop { $0 == "/" }
        return try await send("GET", proxyPath, accept: "*/*", what: "proxy GET \(proxyPath)")
    }

    public func canI(_ attributes: SelfSubjectAccessReview.ResourceAttributes) async throws -> Bool? {
        let body = try JSONEncoder().encode(SelfSubjectAccessReview(attributes))
        do {
            let answer = try await send(
                "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body: Array(body),
                // A review is a question that stores nothing: asking again is safe.
                contentType: "application/json", idempotent: true, what: "SelfSubjectAccessReview \(attributes.summary)")
            return try decodeObject(SelfSubjectAccessReview.self, Data(answer), what: "SelfSubjectAccessReview").status?.allowed
        } catch let error as KubeError where error.code == .notFound {
            return nil
        }
    }

    public func createNamespace(_ name: String) async throws {
        let body = #"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"\#(name)"}}"#
        do {
            // Safe to repeat: a namespace the failed attempt did create answers AlreadyExists, which is success here.
            _ = try await send("POST", "/api/v1/namespaces", body: Array(body.utf8), contentType: "application/json", idempotent: true,
                               what: "create Namespace \(name)")
        } catch let error as KubeError where error.code == .alreadyExists {
            return
        }
    }

    // MARK: Transport

    /// The HTTP client for the current credential, and the auth headers to send.
    private func prepare() async throws -> (HTTPClient, [HTTPHeader]) {
        let credential: Credential
        do {
            credential = try await credentials.current()
        } catch let error as KubeConfigError {
            throw KubeError(.unauthorized, "credentials for context '\(configuration.contextName)': \(error.message)")
        }
        var headers = [HTTPHeader("User-Agent", "kverify/0.1")]
        if let token = credential.bearerToken {
            headers.append(HTTPHeader("Authorization", "Bearer \(token.exposedString)"))
        } else if let basic = credential.basicAuth {
            let encoded = Data("\(basic.username):\(basic.password.exposedString)".utf8).base64EncodedString()
            headers.append(HTTPHeader("Authorization", "Basic \(encoded)"))
        }
        let key = TLSKey(certificate: credential.clientCertificatePEM, key: credential.clientKeyPEM?.exposed)
        let client = clients.withLock { clients in
            if let existing = clients[key] { return existing }
            let cluster = configuration.cluster
            let client = HTTPClient(
                tls: TLSOptions(
                    caPEM: cluster.certificateAuthorityPEM, clientCertificatePEM: key.certificate, clientKeyPEM: key.key,
                    verifyPeer: !cluster.insecureSkipTLSVerify, connectTo: connectTo, proxyURL: cluster.proxyURL),
                logger: logger)
            clients[key] = client
            return client
        }
        return (client, headers)
    }

    /// One API call with retries; returns the body of a 2xx answer.
    func send(
        _ method: String, _ path: String, body: [UInt8]? = nil, contentType: String? = nil, accept: String = "application/json",
        idempotent: Bool? = nil, what: String
    ) async throws -> [UInt8] {
        let idempotent = idempotent ?? (method == "GET" || method == "HEAD")
        var attempt = 0
        var reauthenticated = false
        let budgetEnd = retry.budgetEnd()
        func mayRetry(after delay: Duration) -> Bool { retry.allowsRetry(after: attempt, delay: delay, budgetEnd: budgetEnd) }
        while true {
            attempt += 1
            let (client, auth) = try await prepare()
            var headers = auth + [HTTPHeader("Accept", accept)]
            if let contentType { headers.append(HTTPHeader("Content-Type", contentType)) }
            let request = HTTPRequest(
                method: method, url: baseURL + path, headers: headers, body: body, timeout: requestTimeout,
                connectTimeout: min(requestTimeout, .seconds(10)), maxResponseBytes: maxResponseBytes)
            let response: HTTPResponse
            do {
                response = try await client.execute(request)
            } catch let error as HTTPError where idempotent && Self.isReset(error) && mayRetry(after: retry.backoff.cap) {
                logger.debug("\(method) \(path): \(error.kind.rawValue), retrying")
                retries?.record("connection reset")
                try await Task.sleep(for: retry.backoff.delay(attempt: attempt))
                continue
            } catch {
                throw map(error, what: what)
            }
            switch response.status {
            case 200..<300:
                if accept == "application/json", let type = response.header("Content-Type"), type.lowercased().contains("html") {
                    throw KubeError.from(httpStatus: response.status, body: response.body, contentType: type, what: what)
                        .scrubbing(credentialsIn: auth)
                }
                return response.body
            case 401 where !reauthenticated && configuration.auth.exec != nil:
                // An exec credential may have been revoked before its expiry: fetch a fresh one once.
                reauthenticated = true
                credentials.invalidate()
                continue
            case 429 where idempotent, 500...599 where idempotent && response.status != 501:
                let delay = Self.retryAfter(response) ?? retry.backoff.delay(attempt: attempt)
                if delay > retry.maxRetryAfter || !mayRetry(after: delay) { fallthrough }
                logger.debug("\(method) \(path): HTTP \(response.status), retrying in \(delay)")
                retries?.record("HTTP \(response.status)")
                try await Task.sleep(for: delay)
                continue
            default:
                var error = KubeError.from(httpStatus: response.status, body: response.body, contentType: response.header("Content-Type"), what: what)
                    .scrubbing(credentialsIn: auth)
                if attempt > 1 { error.message += " (after \(attempt) attempts)" }
                throw error
            }
        }
    }

    /// `Retry-After` in seconds (the API server sends seconds; an HTTP date is honoured too).
    static func retryAfter(_ response: HTTPResponse) -> Duration? {
        guard let value = response.header("Retry-After")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(value), seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSinceNow) * 1000))
    }

    /// A connection the server dropped (not one it refused): worth another try for an idempotent call. On HTTP/2
    /// that includes a connection ended under its streams (a GOAWAY, as kube-apiserver's `--goaway-chance` sends on
    /// purpose): libcurl says "Error in the HTTP2 framing layer", or "Stream error in the HTTP/2 framing layer".
    static func isReset(_ error: HTTPError) -> Bool {
        guard error.kind == .protocolError else { return false }
        let reason = error.reason.lowercased()
        return ["reset", "empty reply", "recv failure", "partial", "transferred a partial", "connection died", "closed",
                "framing layer", "goaway"]
            .contains(where: reason.contains) && !reason.contains("ssl") && !reason.contains("alert")
    }

    /// Transport errors as `KubeError`s that say what to check.
    func map(_ error: any Error, what: String) -> any Error {
        guard let error = error as? HTTPError else { return error }
        let server = configuration.cluster.server
        let context = "context '\(configuration.contextName)'"
        let reason = error.reason.lowercased()
        switch error.kind {
        case .connectionFailed:
            return KubeError(.unreachable, "\(what): cannot connect to \(server) (\(context)): \(error.reason); is the cluster running and the server address right?")
        case .tlsFailed:
            return KubeError(.tlsFailed, "\(what): TLS with \(server) (\(context)) failed: \(error.reason); check certificate-authority(-data), tls-server-name and the client certificate in the kubeconfig")
        case .protocolError where reason.contains("ssl") || reason.contains("alert") || reason.contains("certificate"):
            // TLS 1.3 reports a refused client certificate only when the first response is read.
            return KubeError(.tlsFailed, "\(what): \(server) (\(context)) refused the TLS session: \(error.reason); the server requires a client certificate it trusts — check client-certificate(-data)/client-key(-data)")
        case .timedOut:
            return KubeError(.timedOut, "\(what): \(server) (\(context)) did not answer within the deadline: \(error.reason)")
        case .tooLarge:
            return KubeError(.badResponse, "\(what): \(error.reason)")
        case .protocolError:
            return KubeError(.unreachable, "\(what): the connection to \(server) (\(context)) broke: \(error.reason)")
        case .invalidRequest:
            return KubeError(.badRequest, "\(what): \(error.reason)")
        }
    }
}
