import Foundation
import SimFaults
import SimStore
import Synchronization
import NIOCore
import NIOHTTP1
import NIOPosix

/// The `stub` runtime: instead of a process, an in-process HTTP listener on each of a container's ports that
/// serves a canned exposition on `/metrics` and 200 "ok" elsewhere — cheap enough for hundreds of pods.
package final class StubServer: Sendable {
    private let channels: [any Channel]
    /// Accepted connections, closed on stop as a process's are when it exits: the API server's proxy keeps
    /// connections to pods alive, and one left open would let a stopped pod go on answering.
    private let accepted: Accepted

    static func start(address: String, ports: [Int], metrics: ByteBuffer, group: any EventLoopGroup) async throws -> StubServer {
        var channels: [any Channel] = []
        let accepted = Accepted()
        do {
            for port in ports {
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        accepted.add(channel)
                        return channel.pipeline.configureHTTPServerPipeline().flatMap {
                            channel.pipeline.addHandler(Responder(metrics: metrics))
                        }
                    }
                    .bind(host: address, port: port).get()
                channels.append(channel)
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return StubServer(channels: channels, accepted: accepted)
    }

    private init(channels: [any Channel], accepted: Accepted) {
        self.channels = channels
        self.accepted = accepted
    }

    func stop() async {
        for channel in channels { try? await channel.close() }
        for channel in accepted.stop() { try? await channel.close() }
    }

    /// The open accepted connections; once stopped, a late one is closed at once.
    private final class Accepted: Sendable {
        private let open = Mutex<(channels: [ObjectIdentifier: any Channel], stopped: Bool)>(([:], false))

        func add(_ channel: any Channel) {
            let id = ObjectIdentifier(channel)
            let stopped = open.withLock { open in
                if !open.stopped { open.channels[id] = channel }
                return open.stopped
            }
            if stopped { channel.close(promise: nil); return }
            channel.closeFuture.whenComplete { [self] _ in _ = open.withLock { $0.channels.removeValue(forKey: id) } }
        }

        func stop() -> [any Channel] {
            open.withLock { open in
                open.stopped = true
                defer { open.channels.removeAll() }
                return Array(open.channels.values)
            }
        }
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let metrics: ByteBuffer
        var path = "/"

        init(metrics: ByteBuffer) { self.metrics = metrics }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): path = String(head.uri.split(separator: "?").first ?? "/")
            case .body: break
            case .end:
                let body = path == "/metrics" ? metrics : ByteBuffer(string: "ok\n")
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: path == "/metrics" ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
                headers.add(name: "Content-Length", value: String(body.readableBytes))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
