import Foundation
import SimStore
import SPDY
import KubeModel
import Logging
import NIOCore
import NIOPosix
import NIOWebSocket

/// Serves `pods/NAME/portforward` upgraded to a WebSocket with `SPDY/3.1+portforward.k8s.io`: the WebSocket's binary
/// messages carry a SPDY/3.1 session in which kubectl opens, per local connection, an error stream and a data stream
/// (headers `streamType`, `port`, `requestID`). The data stream is joined to a TCP connection to the pod's sim
/// address and port; a failure to connect is written on the error stream, as the kubelet does.
struct PortForwardSession {
    let stream: StreamRequest
    let store: ObjectStore
    let group: any EventLoopGroup
    let logger: Logger

    /// One local connection of kubectl's: its two streams.
    private struct Pair {
        var error: UInt32?
        var data: UInt32?
        var port: Int
    }

    /// Over a WebSocket (`SPDY/3.1+portforward.k8s.io`): the session's bytes are the binary messages; pings are
    /// answered here.
    func run(inbound: NIOAsyncChannelInboundStream<WebSocketFrame>, send: WebSocketSender) async {
        let (bytes, continuation) = AsyncStream<[UInt8]>.makeStream()
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                do {
                    frames: for try await frame in inbound {
                        switch frame.opcode {
                        case .binary: continuation.yield([UInt8](frame.unmaskedData.readableBytesView))
                        case .ping: send.pong(frame.unmaskedData)
                        case .connectionClose: break frames
                        default: continue
                        }
                    }
                } catch {}
                continuation.finish()
            }
            await run(input: bytes, transport: SPDYTransport(send: { send.binary($0) }, close: { send.close() }))
            tasks.cancelAll()
        }
    }

    /// Over the connection itself (the legacy `Upgrade: SPDY/3.1` that kubectl uses with
    /// `KUBECTL_PORT_FORWARD_WEBSOCKETS=false` or when the WebSocket upgrade fails).
    func run(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async {
        let (bytes, continuation) = AsyncStream<[UInt8]>.makeStream()
        let (out, sink) = AsyncStream<[UInt8]>.makeStream()
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                do {
                    for try await buffer in inbound { continuation.yield([UInt8](buffer.readableBytesView)) }
                } catch {}
                continuation.finish()
            }
            tasks.addTask {
                for await chunk in out { try? await outbound.write(ByteBuffer(bytes: chunk)) }
            }
            await run(input: bytes, transport: SPDYTransport(send: { sink.yield($0) }, close: { sink.finish() }))
            sink.finish()
            tasks.cancelAll()
        }
    }

    private func run(input: AsyncStream<[UInt8]>, transport: SPDYTransport) async {
        let pod: JSONValue
        do {
            pod = try store.get(ResourceCatalog.all[2], namespace: stream.namespace, name: stream.pod)
        } catch {
            transport.close()
            return
        }
        let address = pod.string(at: "status", "podIP") ?? ""
        let uid = pod.string(at: "metadata", "uid") ?? ""
        let writer = SPDYWriter(transport: transport)
        var parser = SPDY.Parser()
        var pairs: [String: Pair] = [:]
        var connections: [UInt32: PodConnection] = [:]
        await withTaskGroup(of: Void.self) { tasks in
            frames: for await bytes in input {
                parser.append(bytes)
                while let spdy = parser.next() {
                    switch spdy {
                    case .control(let type, let flags, let payload):
                        switch SPDY.ControlType(rawValue: type) {
                        case .synStream?:
                            let id = SPDY.readUInt32(payload, at: 0) & 0x7fff_ffff
                            let headers = (try? writer.codec.inflate(Array(payload.dropFirst(10)))).flatMap(SPDY.decodeHeaders) ?? [:]
                            writer.synReply(id)
                            guard let type = headers["streamtype"], let request = headers["requestid"],
                                  let port = headers["port"].flatMap({ Int($0) }) else {
                                writer.reset(id, status: SPDY.protocolError)
                                continue
                            }
                            var pair = pairs[request] ?? Pair(port: port)
                            if type == "error" {
                                pair.error = id
                            } else if type == "data" {
                                pair.data = id
                                let connection = PodConnection(stream: id)
                                connections[id] = connection
                                let errorStream = pair.error
                                tasks.addTask {
                                    await connection.run(host: address, port: port, group: group, writer: writer, errorStream: errorStream,
                                                         failure: { reason in
                                                             "error forwarding port \(port) to pod \(stream.pod), uid \(uid): "
                                                                 + "failed to connect to localhost:\(port) inside the pod (sim address \(address)): \(reason)"
                                                         })
                                }
                            } else {
                                writer.reset(id, status: SPDY.protocolError)
                            }
                            // A pair is complete once its data stream arrived (kubectl opens the error stream first).
                            pairs[request] = type == "data" ? nil : pair
                            if flags & SPDY.flagFin != 0 { connections[id]?.finishInput() }
                        case .rstStream?:
                            let id = SPDY.readUInt32(payload, at: 0) & 0x7fff_ffff
                            connections.removeValue(forKey: id)?.cancel()
                        case .ping?:
                            writer.raw(SPDY.control(.ping, payload))
                        case .goAway?:
                            break frames
                        default:
                            continue  // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do for a forwarder
                        }
                    case .data(let id, let flags, let payload):
                        guard let connection = connections[id] else { continue }
                        if !payload.isEmpty { connection.write(payload) }
                        if flags & SPDY.flagFin != 0 { connection.finishInput() }
                    }
                }
            }
            for connection in connections.values { connection.cancel() }
            tasks.cancelAll()
        }
        logger.debug("port-forward to \(stream.namespace)/\(stream.pod) ended")
        transport.close()
    }
}

/// Where a SPDY session's frames go, and how it ends.
struct SPDYTransport: Sendable {
    var send: @Sendable ([UInt8]) -> Void
    var close: @Sendable () -> Void
}

/// Encodes the server's frames. The pod connections' tasks send data frames through it; only the session's reading
/// loop touches the header codec (one zlib stream per direction for the whole session), in `synReply` and `inflate`.
final class SPDYWriter: Sendable {
    let transport: SPDYTransport
    nonisolated(unsafe) let codec = SPDY.HeaderCodec()  // confined to the session's reading loop (see above)

    init(transport: SPDYTransport) { self.transport = transport }

    func raw(_ bytes: [UInt8]) { transport.send(bytes) }

    /// Called by the reading loop only.
    func synReply(_ stream: UInt32) {
        let block = (try? codec.deflate(SPDY.encodeHeaders([]))) ?? []
        transport.send(SPDY.control(.synReply, SPDY.uint32(stream) + block))
    }

    func reset(_ stream: UInt32, status: UInt32) {
        transport.send(SPDY.control(.rstStream, SPDY.uint32(stream) + SPDY.uint32(status)))
    }

    func data(_ stream: UInt32, _ bytes: some Collection<UInt8>, fin: Bool = false) {
        transport.send(SPDY.data(stream: stream, flags: fin ? SPDY.flagFin : 0, bytes))
    }
}

/// The pod side of one data stream: a TCP connection to the pod's address, fed in order from the SPDY stream.
final class PodConnection: Sendable {
    let stream: UInt32
    private let input: AsyncStream<[UInt8]?>
    private let continuation: AsyncStream<[UInt8]?>.Continuation

    init(stream: UInt32) {
        self.stream = stream
        (input, continuation) = AsyncStream<[UInt8]?>.makeStream()
    }

    func write(_ bytes: [UInt8]) { continuation.yield(bytes) }
    /// kubectl's side ended (its local connection closed): half-close towards the pod.
    func finishInput() { continuation.yield(nil) }
    func cancel() { continuation.finish() }

    func run(host: String, port: Int, group: any EventLoopGroup, writer: SPDYWriter, errorStream: UInt32?,
             failure: @escaping @Sendable (String) -> String) async {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(5))
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel,
                                                                    configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
        } catch {
            let reason = "\(error)".contains("refused") ? "dial tcp4 \(host):\(port): connect: connection refused" : "\(error)"
            if let errorStream { writer.data(errorStream, Array(failure(reason).utf8), fin: true) }
            writer.data(stream, [UInt8](), fin: true)
            return
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask {
                        for await chunk in self.input {
                            guard let chunk else {
                                outbound.finish()
                                return
                            }
                            try await outbound.write(ByteBuffer(bytes: chunk))
                        }
                        outbound.finish()
                    }
                    for try await buffer in inbound {
                        var remaining = buffer
                        while remaining.readableBytes > 0 {
                            let slice = remaining.readSlice(length: min(remaining.readableBytes, 32768))!
                            writer.data(stream, slice.readableBytesView)
                        }
                    }
                    tasks.cancelAll()
                }
            }
        } catch {}
        // The pod closed its side: end the data stream, and the error stream with no error.
        writer.data(stream, [UInt8](), fin: true)
        if let errorStream { writer.data(errorStream, [UInt8](), fin: true) }
        continuation.finish()
    }
}
