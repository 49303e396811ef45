import Foundation
import SimStore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The API server's connections to pods for `…/proxy/…` requests, kept alive and reused the way kube-apiserver's
/// proxy transport (Go's `http.Transport`) keeps them: a pod that answered with keep-alive is not dialled again for
/// the next request. Dialling per request cost the sim a name lookup, Happy Eyeballs, a NIO channel and the pod's
/// accept for every proxied GET — about a fifth of its CPU under `scripts/bench/kube_proxy.sh` (perf, issue #16).
///
/// A pod that closes after each answer (HTTP/1.0, `Connection: close`, gunicorn's sync worker) is dialled per
/// request as before. A reused connection the pod closed while it sat idle fails before any answer; an idempotent
/// request is then sent once more on a new connection, as Go's transport does.
final class ProxyPool: Sendable {
    struct Endpoint: Hashable, Sendable {
        var host: String
        var port: Int
    }

    /// Idle connections kept per pod port (Go's default is 2; a traffic phase keeps more requests in flight per pod).
    static let maxIdlePerEndpoint = 4
    /// Idle connections kept over all pods, so a large cluster cannot run the sim out of file descriptors (each
    /// idle connection holds two: the sim's end, and the stub pod's in the same process).
    static let maxIdleTotal = 1024
    /// Go's `IdleConnTimeout` default: an idle connection older than this is closed, not reused.
    static let idleTimeout: Duration = .seconds(90)

    private let group: any EventLoopGroup
    private struct Idle {
        var byEndpoint: [Endpoint: [(connection: ProxiedConnection, since: ContinuousClock.Instant)]] = [:]
        var count = 0
        /// Every open connection, idle or in use, so that `closeAll` can close them and wait for their tasks.
        var live: [ObjectIdentifier: ProxiedConnection] = [:]
        /// After `closeAll` nothing is kept.
        var closed = false
    }

    private let idle = Mutex(Idle())

    init(group: any EventLoopGroup) { self.group = group }

    /// A connection to `endpoint`: an idle one that is still open (unless `fresh`), or a new one; `reused` says which.
    func checkout(_ endpoint: Endpoint, fresh: Bool = false) async throws -> (connection: ProxiedConnection, reused: Bool) {
        let now = ContinuousClock.now
        var stale: [ProxiedConnection] = []
        let found: ProxiedConnection? = fresh ? nil : idle.withLock { idle in
            defer { if idle.byEndpoint[endpoint]?.isEmpty == true { idle.byEndpoint[endpoint] = nil } }
            while let candidate = idle.byEndpoint[endpoint]?.popLast() {
                idle.count -= 1
                if candidate.connection.isOpen, now - candidate.since < Self.idleTimeout { return candidate.connection }
                stale.append(candidate.connection)
            }
            return nil
        }
        for connection in stale { connection.close() }
        if let found { return (found, true) }
        let connection = try await ProxiedConnection.dial(endpoint, group: group)
        let closed = idle.withLock { idle in
            if !idle.closed { idle.live[ObjectIdentifier(connection)] = connection }
            return idle.closed
        }
        if closed {
            connection.close()
            throw ChannelError.ioOnClosedChannel
        }
        // A pod that goes away takes its idle connections out of the count with it.
        connection.channel.closeFuture.whenComplete { [weak self] _ in self?.forget(connection, endpoint) }
        return (connection, false)
    }

    private func forget(_ connection: ProxiedConnection, _ endpoint: Endpoint) {
        idle.withLock { idle in
            idle.live[ObjectIdentifier(connection)] = nil
            guard let index = idle.byEndpoint[endpoint]?.firstIndex(where: { $0.connection === connection }) else { return }
            idle.byEndpoint[endpoint]?.remove(at: index)
            if idle.byEndpoint[endpoint]?.isEmpty == true { idle.byEndpoint[endpoint] = nil }
            idle.count -= 1
        }
    }

    /// Hands a connection back after a complete keep-alive exchange; beyond the idle limit, or after `closeAll`, it is closed.
    func checkin(_ connection: ProxiedConnection, _ endpoint: Endpoint) {
        let kept = idle.withLock { idle in
            guard !idle.closed, connection.isOpen, idle.count < Self.maxIdleTotal,
                  idle.byEndpoint[endpoint, default: []].count < Self.maxIdlePerEndpoint else { return false }
            idle.byEndpoint[endpoint, default: []].append((connection, .now))
            idle.count += 1
            return true
        }
        if !kept { connection.close() }
    }

    /// Closes every connection, idle or in use, and waits for their tasks, so none touches the event loops after
    /// the sim shuts them down.
    func closeAll() async {
        let all = idle.withLock { idle in
            defer { idle = Idle(closed: true) }
            return Array(idle.live.values)
        }
        for connection in all { connection.close() }
        for connection in all { await connection.finished() }
    }
}

/// One HTTP/1.1 connection to a pod. `NIOAsyncChannel`'s inbound may be iterated by one task only, so one task owns
/// the connection for its whole life and runs the exchanges handed to it, one after another.
final class ProxiedConnection: Sendable {
    typealias Inbound = NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    /// One request and its answer on this connection; returns whether the connection may carry another.
    typealias Exchange = @Sendable (inout Inbound, Outbound) async throws -> Bool

    private struct Job: Sendable {
        var exchange: Exchange
        var done: CheckedContinuation<Bool, any Error>
    }

    let channel: any Channel
    private let jobs: AsyncStream<Job>.Continuation
    private let task: Task<Void, Never>

    private init(channel: any Channel, jobs: AsyncStream<Job>.Continuation, task: Task<Void, Never>) {
        self.channel = channel
        self.jobs = jobs
        self.task = task
    }

    /// Returns once the connection's task ended (after the channel closed).
    func finished() async { await task.value }

    var isOpen: Bool { channel.isActive }

    static func dial(_ endpoint: ProxyPool.Endpoint, group: any EventLoopGroup) async throws -> ProxiedConnection {
        let bootstrap = ClientBootstrap(group: group).connectTimeout(.seconds(5))
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
            }
        }
        // A pod IP needs no resolver: connecting by name would run getaddrinfo and Happy Eyeballs for every dial.
        let client = if let address = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) {
            try await bootstrap.connect(to: address, channelInitializer: initializer)
        } else {
            try await bootstrap.connect(host: endpoint.host, port: endpoint.port, channelInitializer: initializer)
        }
        let (stream, jobs) = AsyncStream<Job>.makeStream()
        client.channel.closeFuture.whenComplete { _ in jobs.finish() }
        let task = Task(executorPreference: SimExecutor.shared) {
            var pending = stream.makeAsyncIterator()
            do {
                try await client.executeThenClose { inbound, outbound in
                    var responses = inbound.makeAsyncIterator()
                    while let job = await pending.next() {
                        do {
                            let reusable = try await job.exchange(&responses, outbound)
                            job.done.resume(returning: reusable)
                            if !reusable { return }
                        } catch {
                            job.done.resume(throwing: error)
                            return
                        }
                    }
                }
            } catch {
                // A failed exchange was already reported to its caller; what is left is the channel's close.
            }
            // Whoever handed a job in after the end learns that the connection is gone.
            jobs.finish()
            while let job = await pending.next() { job.done.resume(throwing: ChannelError.ioOnClosedChannel) }
        }
        return ProxiedConnection(channel: client.channel, jobs: jobs, task: task)
    }

    /// Runs `exchange` on this connection's task; returns whether the connection may carry another request.
    func run(_ exchange: @escaping Exchange) async throws -> Bool {
        try await withCheckedThrowingContinuation { done in
            if case .terminated = jobs.yield(Job(exchange: exchange, done: done)) {
                done.resume(throwing: ChannelError.ioOnClosedChannel)
            }
        }
    }

    func close() { channel.close(promise: nil) }
}
