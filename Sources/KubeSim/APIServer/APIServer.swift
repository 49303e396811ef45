import Foundation
import SimFaults
import Synchronization
import SimStore
import KubeModel
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import NIOWebSocket

/// The I/O shell of the API server: HTTPS (a client certificate or a ServiceAccount token) or plain HTTP on loopback;
/// over TLS, HTTP/2 when ALPN chooses it (one task per stream), else HTTP/1.1 keep-alive (one task per connection).
/// Every request goes through `APIRouter`, watches stream JSON lines, proxy requests are forwarded to the pod's process. A WebSocket upgrade of `pods/NAME/exec|attach` becomes
/// a `RemoteCommandSession`, of `pods/NAME/portforward` a `PortForwardSession` (SPDY over the WebSocket).
package final class APIServer: Sendable {
    package let port: Int
    private let serverChannel: any Channel
    private let acceptTask: Task<Void, Never>
    private let store: ObjectStore
    /// Connections by protocol and HTTP/2 streams served, for tests and benchmarks that prove what clients negotiated.
    package let traffic: Traffic

    /// Request bodies above this are refused with 413, as the real server's 3 MiB limit.
    static let maxBodyBytes = 3 * 1024 * 1024

    private let proxyPool: ProxyPool

    private init(port: Int, serverChannel: any Channel, acceptTask: Task<Void, Never>, store: ObjectStore, traffic: Traffic,
                 proxyPool: ProxyPool) {
        self.traffic = traffic
        self.proxyPool = proxyPool
        self.port = port
        self.serverChannel = serverChannel
        self.acceptTask = acceptTask
        self.store = store
    }

    package struct Settings: Sendable {
        package var host = "127.0.0.1"
        package var port = 0
        package var tls: NIOSSLContext?
        package var bookmarkInterval: Duration = .seconds(5)
        package var proxyTimeout: Duration = .seconds(30)
        /// Injected API latency, errors and watch faults (see `FaultPlan`).
        package var faults: FaultSwitch?
        /// The node's side of exec and attach; nil when the sim runs no kubelet processes.
        package var streams: (any PodStreams)?

        package init() {}
    }

    package static func start(router: @escaping @Sendable (Int) -> APIRouter, store: ObjectStore, settings: Settings,
                      group: any EventLoopGroup, logger: Logger) async throws -> APIServer {
        let tls = settings.tls
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .bind(host: settings.host, port: settings.port) { child in
                child.eventLoop.makeCompletedFuture {
                    guard let tls else {
                        return child.eventLoop.makeSucceededFuture(Negotiated.http1(try Self.configureHTTP1(child)))
                    }
                    try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    // ALPN decides, as on a real API server: h2 for clients that offer it (client-go, kubectl, helm,
                    // libcurl), HTTP/1.1 for the rest and for the upgrades of exec, attach and port-forward.
                    let negotiation = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                        switch result {
                        case .negotiated("h2"):
                            return channel.configureAsyncHTTP2Pipeline(mode: .server, configuration: Self.http2Configuration) { stream in
                                stream.eventLoop.makeCompletedFuture {
                                    try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: stream)
                                }
                            }.flatMapThrowing { multiplexer in
                                try channel.pipeline.syncOperations.addHandler(ConnectionErrorLogger(logger: logger))
                                return .http2(channel, multiplexer)
                            }
                        default:
                            return channel.eventLoop.makeCompletedFuture { .http1(try Self.configureHTTP1(channel)) }
                        }
                    }
                    try child.pipeline.syncOperations.addHandler(negotiation)
                    return negotiation.protocolNegotiationResult
                }
            }
        guard let port = channel.channel.localAddress?.port else { throw SimError("the API server socket has no port") }
        let routes = router(port)
        let traffic = Traffic()
        let proxyPool = ProxyPool(group: group)
        let connections = Connections(router: routes, store: store, settings: settings, group: group, logger: logger, traffic: traffic,
                                      proxyPool: proxyPool)
        let acceptTask = Task(executorPreference: SimExecutor.shared) {
            await withDiscardingTaskGroup { tasks in
                do {
                    try await channel.executeThenClose { inbound in
                        for try await negotiated in inbound {
                            tasks.addTask {
                                switch try? await negotiated.get() {
                                case .http1(let accepted)?:
                                    traffic.count(\.http1Connections)
                                    // The first request decides: an upgrade to a stream, or plain HTTP from then on.
                                    switch try? await accepted.get() {
                                    case .http(let connection)?: await connections.serve(connection)
                                    case .webSocket(let connection, let stream)?: await connections.serve(connection, stream)
                                    case .spdy(let connection, let stream)?: await connections.serve(connection, stream)
                                    case nil: break
                                    }
                                case .http2(let connection, let multiplexer)?:
                                    traffic.count(\.http2Connections)
                                    await connections.serve(multiplexer, on: connection)
                                    try? await connection.close()
                                case nil: break
                                }
                            }
                        }
                    }
                } catch {
                    logger.debug("API server stopped accepting: \(error)")
                }
            }
        }
        return APIServer(port: port, serverChannel: channel.channel, acceptTask: acceptTask, store: store, traffic: traffic,
                         proxyPool: proxyPool)
    }

    package final class Traffic: Sendable {
        package struct Counts: Sendable, Equatable {
            package var http1Connections = 0
            package var http2Connections = 0
            package var http2Streams = 0
            /// h2 streams whose request loop has not ended yet.
            package var openStreams = 0
            /// Connections the proxy opened to pods (a keep-alive pod's are reused: fewer dials than requests).
            package var proxyDials = 0
        }

        private let counts = Mutex(Counts())
        package var snapshot: Counts { counts.withLock { $0 } }
        func count(_ field: WritableKeyPath<Counts, Int>, by change: Int = 1) { counts.withLock { $0[keyPath: field] += change } }
    }

    /// What ALPN chose for a connection (plain HTTP is always HTTP/1.1).
    enum Negotiated: Sendable {
        case http1(EventLoopFuture<Accepted>)
        /// Every stream a request, served as HTTP/1 parts through `HTTP2FramePayloadToHTTP1ServerCodec`.
        case http2(any Channel, NIOHTTP2Handler.AsyncStreamMultiplexer<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>>)
    }

    /// kube-apiserver's settings: 1,000 concurrent streams per connection (`--http2-max-streams-per-connection`);
    /// 1 MiB windows, so a 3 MiB apply body is not sent in 64 KiB steps. NIO's DoS limits (200 client resets or
    /// stream errors per 30 s, 200 glitches per connection) are raised: Go's server, which kube-apiserver is, has no
    /// such limits, and one kverify run on one connection cancels more than 200 requests and watches (a lifecycle
    /// phase lost its connection to ENHANCE_YOUR_CALM: libcurl's "Error in the HTTP2 framing layer").
    static let http2Configuration: NIOHTTP2Handler.Configuration = {
        var configuration = NIOHTTP2Handler.Configuration()
        configuration.connection.maximumConnectionGlitches = 1_000_000
        configuration.stream.streamResetFrameRateLimit.maximumCount = 1_000_000
        configuration.stream.streamErrorRateLimit.maximumCount = 1_000_000
        configuration.connection.initialSettings = nioDefaultSettings.filter { $0.parameter != .maxConcurrentStreams } + [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
        ]
        configuration.connection.targetWindowSize = 1 << 20
        configuration.stream.targetWindowSize = 1 << 20
        return configuration
    }()

    private static func configureHTTP1(_ channel: any Channel) throws -> EventLoopFuture<Accepted> {
        let upgraded = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
        let upgrader = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<Accepted>.self)
        try channel.pipeline.syncOperations.addHandler(RefusedUpgradeFilter(), position: .before(upgrader))
        return upgraded
    }

    /// What a connection became after its first request.
    enum Accepted: Sendable {
        case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>)
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, StreamRequest)
        /// The legacy port-forward upgrade: SPDY/3.1 directly on the connection.
        case spdy(NIOAsyncChannel<ByteBuffer, ByteBuffer>, StreamRequest)
    }

    /// HTTP/1.1 whose first request may upgrade to a WebSocket for exec, attach and port-forward. Anything else (the
    /// SPDY upgrade among them) stays HTTP and reaches the router, which answers it with a Status.
    static let pipeline = NIOUpgradableHTTPServerPipelineConfiguration<Accepted>(upgradeConfiguration: .init(
        upgraders: [NIOTypedWebSocketServerUpgrader<Accepted>(
            maxFrameSize: 1 << 20,
            shouldUpgrade: { channel, head in
                guard let stream = StreamRequest(head) else { return channel.eventLoop.makeSucceededFuture(nil) }
                return channel.eventLoop.makeSucceededFuture(HTTPHeaders([("Sec-WebSocket-Protocol", stream.subprotocol)]))
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    // gorilla/websocket splits long messages into fragments; the sessions want whole messages.
                    try channel.pipeline.syncOperations.addHandler(
                        NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16,
                                                    maxAccumulatedFrameSize: 1 << 24))
                    let connection = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
                    // shouldUpgrade accepted exactly these requests.
                    return .webSocket(connection, StreamRequest(head)!)
                }
            }), LegacySPDYUpgrader()],
        notUpgradingCompletionHandler: { channel in
            channel.eventLoop.makeCompletedFuture {
                .http(try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel))
            }
        }))

    /// Closes the listener, ends every watch and open connection, and waits for them.
    package func stop() async {
        store.closeAllWatches()
        try? await serverChannel.close()
        acceptTask.cancel()
        await acceptTask.value
        await proxyPool.closeAll()
    }
}

/// Serves the requests of one connection after another.
private struct Connections: Sendable {
    let router: APIRouter
    let store: ObjectStore
    let settings: APIServer.Settings
    let group: any EventLoopGroup
    let logger: Logger
    let traffic: APIServer.Traffic
    let proxyPool: ProxyPool

    typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    /// Serves each HTTP/2 stream of a connection as one request, concurrently, until the client ends the connection.
    func serve(_ multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>>,
               on connection: any Channel) async {
        await withDiscardingTaskGroup { streams in
            do {
                for try await stream in multiplexer.inbound {
                    traffic.count(\.http2Streams)
                    traffic.count(\.openStreams)
                    streams.addTask {
                        await serve(stream, onStreamOf: connection)
                        traffic.count(\.openStreams, by: -1)
                    }
                }
            } catch {
                logger.debug("HTTP/2 connection ended: \(error)")
            }
        }
    }

    /// Serves the requests of an HTTP/1.1 connection, or the one request of an HTTP/2 stream of `parent` (whose channel
    /// holds the TLS handler).
    ///
    /// An HTTP/1.1 connection that may not carry another request is closed after the response. An h2 stream is not:
    /// closing it before its END_STREAM left NIO's flow-control buffer (a busy connection, a slow reader) sends
    /// RST_STREAM(CANCEL) and cuts the response. It ends by itself once both sides ended, which ends `inbound`.
    func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, onStreamOf parent: (any Channel)? = nil) async {
        let closed = connection.channel.closeFuture
        let tlsChannel = parent ?? connection.channel
        // Whether the connection ends after a reply: an HTTP/1.1 one that may carry no more, never an h2 stream.
        let isStream = parent != nil
        func endsAfterReply(keepAlive: Bool) -> Bool { !keepAlive && !isStream }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var hasClientCertificate: Bool?
                var body = ByteBuffer()
                var tooLarge = false
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                        body.clear()
                        tooLarge = false
                    case .body(var chunk):
                        if body.readableBytes + chunk.readableBytes > APIServer.maxBodyBytes { tooLarge = true } else { body.writeBuffer(&chunk) }
                    case .end:
                        guard let requestHead = head else { continue }
                        head = nil
                        var request = APIRequest(
                            method: requestHead.method.rawValue, uri: requestHead.uri,
                            headers: requestHead.headers.map { ($0.name, $0.value) },
                            body: Data(body.readableBytesView))
                        if hasClientCertificate == nil {
                            hasClientCertificate = settings.tls == nil
                                ? false : (try? await tlsChannel.nioSSL_peerCertificate().get()) != nil
                        }
                        guard let identity = authenticate(request, clientCertificate: hasClientCertificate ?? false) else {
                            try await writeWhole(status: 401, contentType: "application/json", Self.unauthorized.status.data,
                                                 keepAlive: requestHead.isKeepAlive, to: outbound)
                            if endsAfterReply(keepAlive: requestHead.isKeepAlive) { return }
                            continue
                        }
                        request.identity = identity
                        logger.debug("\(request.method) \(requestHead.uri) content-type=\(request.headers["content-type"] ?? "-") accept=\(request.accept)")
                        if let plan = settings.faults?.plan, !plan.isEmpty {
                            if plan.apiLatency > .zero { try await Task.sleep(for: plan.apiLatency) }
                            if let code = plan.injectedError() {
                                let error = Self.injected(code: code)
                                let retry = code == 429 ? [("Retry-After", String(plan.retryAfterSeconds))] : []
                                try await writeWhole(status: error.code, contentType: "application/json", error.status.data,
                                                     keepAlive: requestHead.isKeepAlive, to: outbound, extraHeaders: retry)
                                if endsAfterReply(keepAlive: requestHead.isKeepAlive) { return }
                                continue
                            }
                        }
                        let reply: Reply = tooLarge
                            ? .error(APIError(code: 413, reason: "RequestEntityTooLarge", message: "Request entity too large: limit is 3145728"))
                            : router.route(request)
                        let keepAlive = try await send(reply, for: request, keepAlive: requestHead.isKeepAlive, to: outbound, closed: closed)
                        if endsAfterReply(keepAlive: keepAlive) { return }
                    }
                }
            }
        } catch {
            logger.debug("connection ended: \(error)")
        }
    }

    static let unauthorized = APIError(code: 401, reason: "Unauthorized", message: "Unauthorized")

    /// The authenticators, in the real server's order: a client certificate the TLS layer verified against the sim's
    /// CA (the admin), then a ServiceAccount bearer token. Over plain HTTP (`--insecure-http`) a request without a
    /// token is the admin, as before tokens existed. Nil: 401.
    private func authenticate(_ request: APIRequest, clientCertificate: Bool) -> Identity? {
        if clientCertificate { return .admin }
        if let token = request.bearerToken {
            return store.serviceAccountTokens.subject(of: token, in: store).map(Identity.serviceAccount)
        }
        return settings.tls == nil ? .admin : nil
    }

    /// Serves one upgraded stream until either side ends it.
    func serve(_ connection: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, _ stream: StreamRequest) async {
        logger.debug("stream \(stream.subresource) \(stream.namespace)/\(stream.pod) over \(stream.subprotocol)")
        do {
            try await connection.executeThenClose { inbound, outbound in
                let (frames, continuation) = AsyncStream<WebSocketFrame>.makeStream()
                let sender = WebSocketSender(continuation: continuation)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await frame in frames { try await outbound.write(frame) }
                    }
                    group.addTask {
                        if stream.subresource == "portforward" {
                            await PortForwardSession(stream: stream, store: store, group: self.group, logger: logger)
                                .run(inbound: inbound, send: sender)
                        } else {
                            await RemoteCommandSession(stream: stream, store: store, streams: settings.streams, faults: settings.faults)
                                .run(inbound: inbound, send: sender)
                        }
                        continuation.finish()
                    }
                    try await group.waitForAll()
                }
            }
        } catch {
            logger.debug("stream ended: \(error)")
        }
    }

    /// Serves one legacy SPDY port-forward until either side ends it.
    func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ stream: StreamRequest) async {
        logger.debug("stream \(stream.subresource) \(stream.namespace)/\(stream.pod) over SPDY/3.1")
        do {
            try await connection.executeThenClose { inbound, outbound in
                await PortForwardSession(stream: stream, store: store, group: group, logger: logger).run(inbound: inbound, outbound: outbound)
            }
        } catch {
            logger.debug("stream ended: \(error)")
        }
    }

    /// The Status an injected API error carries, worded as the real server's.
    static func injected(code: Int) -> APIError {
        switch code {
        case 429: return APIError(code: 429, reason: "TooManyRequests", message: "kverify sim fault: the server has received too many requests and has asked us to try again later")
        case 503: return APIError(code: 503, reason: "ServiceUnavailable", message: "kverify sim fault: the server is currently unable to handle the request")
        case 504: return APIError(code: 504, reason: "Timeout", message: "kverify sim fault: the server was unable to return a response in the time allotted")
        default: return APIError(code: code, reason: "InternalError", message: "kverify sim fault: an error on the server (\"injected\") has prevented the request from succeeding")
        }
    }

    /// Writes a reply; returns whether the connection can carry another request.
    private func send(_ reply: Reply, for request: APIRequest, keepAlive: Bool, to outbound: Outbound,
                      closed: EventLoopFuture<Void>) async throws -> Bool {
        switch reply {
        case .body(let status, let contentType, let data):
            try await writeWhole(status: status, contentType: contentType, data, keepAlive: keepAlive, to: outbound)
            return keepAlive
        case .watch(let plan):
            try await streamWatch(plan, to: outbound, closed: closed)
            return false
        case .logs(let plan):
            try await streamLogs(plan, to: outbound, closed: closed)
            return keepAlive && !plan.follow
        case .proxy(let host, let port, let path):
            return try await forward(request, host: host, port: port, path: path, keepAlive: keepAlive, to: outbound)
        }
    }

    private func writeWhole(status: Int, contentType: String, _ data: Data, keepAlive: Bool, to outbound: Outbound,
                            extraHeaders: [(String, String)] = []) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(data.count))
        headers.add(name: "Cache-Control", value: "no-cache, private")
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        // One write, so one flush: a TLS record and a syscall per response rather than three.
        try await outbound.write(contentsOf: [
            .head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)),
            .body(.byteBuffer(ByteBuffer(bytes: data))), .end(nil),
        ])
    }

    private func startChunked(contentType: String, to outbound: Outbound) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Transfer-Encoding", value: "chunked")
        headers.add(name: "Cache-Control", value: "no-cache, private")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
    }

    // MARK: Watch

    private func streamWatch(_ plan: WatchPlan, to outbound: Outbound, closed: EventLoopFuture<Void>) async throws {
        try await startChunked(contentType: plan.asTable ? Tables.contentType : "application/json", to: outbound)
        var plan = plan
        let faults = settings.faults?.plan ?? FaultPlan()
        if plan.resumed, faults.watchGoneRate > 0, Double.random(in: 0..<1) < faults.watchGoneRate {
            // As the watch cache does when it compacted past the client's version: the client must relist.
            plan.subscription?.cancel()
            plan.subscription = nil
            plan.failure = APIError(code: 410, reason: "Expired", message: "too old resource version: kverify sim fault (watch gone injected)")
        }
        guard let subscription = plan.subscription else {
            let failure = plan.failure ?? .internalError("watch could not start")
            try await writeLine(["type": "ERROR", "object": failure.status], to: outbound)
            try await outbound.write(.end(nil))
            return
        }
        // The stream ends on timeout, on the client closing the connection, or on server stop; each cancels it.
        let lifetime = faults.watchDropAfter.map { min($0, .seconds(plan.timeoutSeconds)) } ?? .seconds(plan.timeoutSeconds)
        let timeout = Task(executorPreference: SimExecutor.shared) {
            try? await Task.sleep(for: lifetime)
            subscription.cancel()
        }
        closed.whenComplete { _ in subscription.cancel() }
        let bookmarks: Task<Void, Never>? = plan.bookmarks ? Task(executorPreference: SimExecutor.shared) { [store, settings] in
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.bookmarkInterval)
                if Task.isCancelled { break }
                subscription.bookmark(store.currentResourceVersion)
            }
        } : nil
        defer {
            timeout.cancel()
            bookmarks?.cancel()
            subscription.cancel()
        }
        for await event in subscription.events {
            var object = event.object
            if event.type == .bookmark {
                object = ["kind": .string(plan.resource.kind), "apiVersion": .string(plan.resource.groupVersion),
                          "metadata": ["resourceVersion": .string(String(event.resourceVersion))]]
            } else if plan.asTable {
                object = Tables.table(plan.resource, items: [object], resourceVersion: event.resourceVersion,
                                      includeObject: plan.includeObject)
            }
            try await writeLine(["type": .string(event.type.rawValue), "object": object], to: outbound)
        }
        try await outbound.write(.end(nil))
    }

    private func writeLine(_ value: JSONValue, to outbound: Outbound) async throws {
        var line = value.data
        line.append(0x0A)
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: line))))
    }

    // MARK: Logs

    private func streamLogs(_ plan: LogPlan, to outbound: Outbound, closed: EventLoopFuture<Void>) async throws {
        try await startChunked(contentType: "text/plain", to: outbound)
        guard let handle = try? FileHandle(forReadingFrom: plan.file) else {
            try await outbound.write(.end(nil))
            return
        }
        defer { try? handle.close() }
        var data = (try? handle.readToEnd()) ?? Data()
        if let tail = plan.tailLines {
            var lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
            if lines.last == "" { lines.removeLast() }
            let kept = lines.suffix(max(0, tail))
            data = Data(kept.map { $0 + "\n" }.joined().utf8)
        }
        if !data.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: data)))) }
        let podsType = ResourceCatalog.all[2]
        while plan.follow, !Task.isCancelled {
            // Poll the file while the pod exists and the client listens; a log has no change notification here.
            try await Task.sleep(for: .milliseconds(200))
            if (try? store.get(podsType, namespace: plan.pod.namespace, name: plan.pod.name)) == nil { break }
            if let more = try? handle.readToEnd(), !more.isEmpty {
                try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: more))))
            }
        }
        try await outbound.write(.end(nil))
    }

    // MARK: Proxy

    /// Forwards one request to `host:port` over plain HTTP, on a pooled keep-alive connection, and streams the answer
    /// back. An idempotent request whose reused connection failed before any answer is sent once more on a new one.
    private func forward(_ request: APIRequest, host: String, port: Int, path: String, keepAlive: Bool,
                         to outbound: Outbound) async throws -> Bool {
        let endpoint = ProxyPool.Endpoint(host: host, port: port)
        var headers = HTTPHeaders()
        for (name, value) in request.headers where !Self.hopByHop.contains(name) { headers.add(name: name, value: value) }
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Content-Length", value: String(request.body.count))
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: path, headers: headers)
        let idempotent = ["GET", "HEAD", "OPTIONS"].contains(request.method)
        let answered = OnceFlag()  // set once the pod's answer has started to reach the client
        for attempt in 1...2 {
            let connection: ProxiedConnection, reused: Bool
            do {
                // The second attempt dials: the next idle connection may be as stale as the first.
                (connection, reused) = try await proxyPool.checkout(endpoint, fresh: attempt > 1)
                if !reused { traffic.count(\.proxyDials) }
            } catch {
                let reason = "\(error)".contains("refused") ? "connect: connection refused" : "\(error)"
                let failure = APIError.serviceUnavailable("error trying to reach service: dial tcp \(host):\(port): \(reason)")
                try await writeWhole(status: failure.code, contentType: "application/json", failure.status.data, keepAlive: keepAlive, to: outbound)
                return keepAlive
            }
            // The exchange and its watchdog settle who ended it under one lock: a watchdog that woke as the exchange
            // finished must not close the connection once it is back in the pool for another request.
            let deadline = settings.proxyTimeout
            let state = Mutex(ExchangeState.running)
            let watchdog = Task(executorPreference: SimExecutor.shared) {
                try? await Task.sleep(for: deadline)
                let expired = state.withLock { state in
                    guard state == .running else { return false }
                    state = .timedOut
                    return true
                }
                if expired { connection.close() }
            }
            defer { watchdog.cancel() }
            do {
                // The exchange runs on the connection's own task; the request's cancellation (the client gone,
                // the server stopping) closes the connection, which ends it.
                let reusable = try await withTaskCancellationHandler {
                    try await relay(head, body: request.body, over: connection, keepAlive: keepAlive, answered: answered, to: outbound)
                } onCancel: {
                    connection.close()
                }
                let finishedInTime = state.withLock { state in
                    guard state == .running else { return false }
                    state = .done
                    return true
                }
                if reusable, finishedInTime { proxyPool.checkin(connection, endpoint) } else { connection.close() }
                return keepAlive
            } catch {
                state.withLock { if $0 == .running { $0 = .done } }
                connection.close()
                // Once part of the answer went to the client, only ending its stream or connection can tell it.
                if answered.isSet { throw error }
                // A kept connection the pod had closed fails at once; a pod too slow to answer is not asked twice.
                if reused, idempotent, attempt == 1, state.withLock({ $0 }) != .timedOut, !Task.isCancelled { continue }
                break
            }
        }
        let failure = APIError.serviceUnavailable("error trying to reach service: \(host):\(port) closed the connection without an answer")
        try await writeWhole(status: failure.code, contentType: "application/json", failure.status.data, keepAlive: false, to: outbound)
        return false
    }

    /// Sends one request on `connection` and streams the pod's answer to the client; whether the connection may carry
    /// another request. `answered` turns true once any byte of the answer reached the client.
    private func relay(_ head: HTTPRequestHead, body: Data, over connection: ProxiedConnection, keepAlive: Bool,
                       answered: OnceFlag, to outbound: Outbound) async throws -> Bool {
        try await connection.run { inbound, requestWriter in
            // The whole request goes out in one flush: a pod that answers and closes as soon as it has the head must not
            // make the write of the end fail.
            var parts: [HTTPClientRequestPart] = [.head(head)]
            if !body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            parts.append(.end(nil))
            try await requestWriter.write(contentsOf: parts)
            var podKeepsAlive = false
            // An answer of a small declared length goes to the client in one write (one flush), as the
            // real proxy buffers between its flushes; anything else streams part by part.
            var held: [HTTPServerResponsePart]? = nil
            while let part = try await inbound.next() {
                if held != nil, case .body(let chunk) = part {
                    held?.append(.body(.byteBuffer(chunk)))
                    continue
                }
                switch part {
                case .head(let response):
                    var forwarded = HTTPHeaders()
                    for header in response.headers where !Self.hopByHop.contains(header.name.lowercased()) || header.name.lowercased() == "content-length" {
                        forwarded.add(name: header.name, value: header.value)
                    }
                    if !forwarded.contains(name: "content-length") { forwarded.add(name: "Transfer-Encoding", value: "chunked") }
                    if !keepAlive { forwarded.add(name: "Connection", value: "close") }
                    // Only a body with a known end leaves the connection usable; one read to EOF ends it.
                    podKeepsAlive = response.isKeepAlive
                        && (response.headers.contains(name: "content-length") || response.headers.contains(name: "transfer-encoding"))
                    let forwardedHead = HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: forwarded))
                    if let length = response.headers.first(name: "content-length").flatMap(Int.init), length <= Self.heldAnswerBytes {
                        held = [forwardedHead]
                    } else {
                        answered.set()
                        try await outbound.write(forwardedHead)
                    }
                case .body(let chunk):
                    try await outbound.write(.body(.byteBuffer(chunk)))
                case .end:
                    answered.set()
                    try await outbound.write(contentsOf: (held ?? []) + [.end(nil)])
                    return podKeepsAlive
                }
            }
            throw ChannelError.eof
        }
    }

    private enum ExchangeState { case running, done, timedOut }

    /// Whether any byte of a proxied answer reached the client; after that a failure cannot be retried.
    /// Answers up to this declared length are forwarded in one write.
    static let heldAnswerBytes = 256 * 1024

    static let hopByHop: Set<String> = ["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "authorization", "content-length", "te", "trailer"]
}

/// Turns an upgrade the sim does not serve (kubectl's legacy `SPDY/3.1` for exec and attach) into a plain request, so
/// the router answers it with a Status that kubectl prints ("unable to upgrade connection: …"). NIO's upgrade handler would
/// otherwise hold such a request without passing it on. Looks at the first request only, then leaves the pipeline.
final class RefusedUpgradeFilter: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    static let header = "X-Kverify-Refused-Upgrade"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        if let upgrade = head.headers.first(name: "upgrade"), upgrade.lowercased() != "websocket",
           upgrade.lowercased() != "spdy/3.1" || StreamRequest(spdy: head) == nil {
            head.headers.remove(name: "upgrade")
            head.headers.remove(name: "connection")
            head.headers.replaceOrAdd(name: Self.header, value: upgrade)
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}

/// Accepts kubectl's legacy port-forward upgrade (`Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version:
/// portforward.k8s.io`); the connection then carries the SPDY session itself. `RefusedUpgradeFilter` lets only those
/// requests through to it.
struct LegacySPDYUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = APIServer.Accepted
    let supportedProtocol = "SPDY/3.1"
    let requiredUpgradeHeaders: [String] = []

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        guard StreamRequest(spdy: upgradeRequest) != nil else {
            return channel.eventLoop.makeFailedFuture(NIOWebSocketUpgradeError.unsupportedWebSocketTarget)
        }
        var headers = initialResponseHeaders
        headers.add(name: "X-Stream-Protocol-Version", value: StreamRequest.legacyPortForwardProtocol)
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<APIServer.Accepted> {
        channel.eventLoop.makeCompletedFuture {
            .spdy(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel), StreamRequest(spdy: upgradeRequest)!)
        }
    }
}

/// Logs why an HTTP/2 connection failed (a protocol error, a limit): every stream on it fails with it, and the client
/// says no more than "Error in the HTTP2 framing layer".
private final class ConnectionErrorLogger: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A client that vanished is routine (kubectl exits without a TLS close_notify); anything else is the protocol
        // or a limit, worth a line.
        var routine = error is IOError
        if case .uncleanShutdown? = error as? NIOSSLError { routine = true }
        if routine {
            logger.debug("HTTP/2 connection from \(context.remoteAddress?.description ?? "?") ended: \(error)")
        } else {
            logger.warning("HTTP/2 connection from \(context.remoteAddress?.description ?? "?") failed: \(error)")
        }
        context.fireErrorCaught(error)
    }
}
