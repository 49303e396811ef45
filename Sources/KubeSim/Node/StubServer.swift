import Foundation
import SimFaults
import SimStore
import NIOCore
import NIOHTTP1
import NIOPosix

/// The `stub` runtime: instead of a process, an in-process HTTP listener on each of a container's ports that
/// serves a canned exposition on `/metrics` and 200 "ok" elsewhere — cheap enough for hundreds of pods.
package final class StubServer: Sendable {
    private let channels: [any Channel]

    static func start(address: String, ports: [Int], metrics: ByteBuffer, group: any EventLoopGroup) async throws -> StubServer {
        var channels: [any Channel] = []
        do {
            for port in ports {
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.pipeline.configureHTTPServerPipeline().flatMap {
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
        return StubServer(channels: channels)
    }

    private init(channels: [any Channel]) { self.channels = channels }

    func stop() async {
        for channel in channels { try? await channel.close() }
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
