import Foundation
import NIOCore
import NIOPosix
import Processes
import SPDY
import Synchronization

/// A running port-forward (`KubeAPI.withPortForward`): connections to `127.0.0.1:localPort` reach the pod's port.
public final class PortForward: Sendable {
    /// The local port connections go to.
    public let localPort: Int
    /// The pod and port forwarded to, for messages.
    public let target: String
    private let log: ErrorLog

    /// The errors of one forward, collected from the moment it starts (kubectl reports them before the port is known).
    final class ErrorLog: Sendable {
        private let entries = Mutex<[String]>([])
        func record(_ error: String) { entries.withLock { if $0.count < 100 { $0.append(error) } } }
        var all: [String] { entries.withLock { $0 } }
    }

    init(localPort: Int, target: String, log: ErrorLog = ErrorLog()) {
        self.localPort = localPort
        self.target = target
        self.log = log
    }

    /// What the server said about connections it could not forward (nothing listening on the port, the pod gone),
    /// oldest first. Such a connection is closed at once on the local side.
    public func errors() -> [String] { log.all }

    func record(_ error: String) { log.record(error) }
}

extension KubeAPI {
    /// `withPortForward` with the target given as text, for errors.
    static func portForwardTarget(pod: String, namespace: String?, port: Int) -> String {
        "pod \(namespace.map { "\($0)/" } ?? "")\(pod) port \(port)"
    }
}

/// The REST backend's port-forward, as `kubectl port-forward` speaks it since 1.31: a local listener; per accepted
/// connection one WebSocket to `pods/NAME/portforward?ports=PORT` with subprotocol `SPDY/3.1+portforward.k8s.io`,
/// carrying a SPDY/3.1 session with an error stream and a data stream (headers `streamType`, `port`, `requestID`).
/// Bytes of the local connection go out as DATA frames of the data stream and come back the same way; a message on
/// the error stream is the server's reason for closing (recorded in `PortForward.errors()`). No SPDY flow control is
/// done, as kubectl's spdystream does none.
extension RESTBackend {
    public func withPortForward<T: Sendable>(
        pod: String, namespace: String?, port: Int, _ body: (PortForward) async throws -> T
    ) async throws -> T {
        let namespace = namespace ?? defaultNamespace
        let target = Self.portForwardTarget(pod: pod, namespace: namespace, port: port)
        guard (1...65535).contains(port) else { throw KubeError(.badRequest, "port-forward to \(target): not a TCP port") }
        let what = "port-forward to \(target)"
        let path = try await webSocket(what: what).basePath + pathWithQuery(Resource.pods.path(namespace: namespace, name: pod, subresource: "portforward"),
                                                   [("ports", String(port))])
        // The pod must exist before anything listens: a wrong name fails here with the server's 404, not on the first
        // connection (kubectl also GETs the pod first).
        _ = try await get(.pods, name: pod, namespace: namespace)

        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child,
                                                                configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        guard let localPort = server.channel.localAddress?.port else {
            server.channel.close(promise: nil)
            throw KubeError(.unreachable, "port-forward to \(target): the local listener has no port")
        }
        let forward = PortForward(localPort: localPort, target: target)
        let listener = server.channel
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await server.executeThenClose { inbound in
                    await withDiscardingTaskGroup { connections in
                        do {
                            for try await connection in inbound {
                                connections.addTask { await self.forward(connection, what: what, path: path, port: port, record: forward) }
                            }
                        } catch {}
                    }
                }
            }
            defer {
                listener.close(promise: nil)
                group.cancelAll()
            }
            return try await body(forward)
        }
    }

    /// One local connection, over a WebSocket of its own, with the credentials of the moment (an exec plugin's token
    /// may have been renewed since the forward started).
    private func forward(_ local: NIOAsyncChannel<ByteBuffer, ByteBuffer>, what: String, path: String, port: Int,
                         record forward: PortForward) async {
        do {
            let socket = try await webSocket(what: what)
            try await local.executeThenClose { localInbound, localOutbound in
                try await socket.session(path: path, protocols: [SPDYPortForward.webSocketProtocol]) { frames, outbound, _ in
                    try await SPDYPortForward(port: port).run(frames: &frames, outbound: outbound, localInbound: localInbound,
                                                              localOutbound: localOutbound, record: forward)
                }
            }
        } catch is CancellationError {
            // The forward ended while this connection was open.
        } catch {
            forward.record("\(error)")
        }
    }
}

/// The client side of one port-forward connection's SPDY/3.1 session (see `RESTBackend.withPortForward`).
struct SPDYPortForward: Sendable {
    static let webSocketProtocol = "SPDY/3.1+portforward.k8s.io"
    static let errorStream: UInt32 = 1
    static let dataStream: UInt32 = 3

    let port: Int

    func run(frames: inout WebSocketFrames, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
             localInbound: NIOAsyncChannelInboundStream<ByteBuffer>, localOutbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
             record forward: PortForward) async throws {
        @Sendable func send(_ spdy: [UInt8]) async throws {
            try await outbound.write(ByteBuffer(bytes: WebSocketFrames.maskedFrame(opcode: 0x2, payload: spdy)))
        }
        // Both streams of one pair, as kubectl opens them: the error stream first (half-closed: only the server
        // writes on it), then the data stream.
        let codec = SPDY.HeaderCodec()
        for (id, type) in [(Self.errorStream, "error"), (Self.dataStream, "data")] {
            let block = try codec.deflate(SPDY.encodeHeaders([("streamtype", type), ("port", String(port)), ("requestid", "0")]))
            // SYN_STREAM: stream id, associated stream 0, priority and slot 0, the header block.
            try await send(SPDY.control(.synStream, flags: type == "error" ? SPDY.flagFin : 0, SPDY.uint32(id) + SPDY.uint32(0) + [0, 0] + block))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Local → pod, in DATA frames below 64 KiB (one WebSocket message each); local EOF half-closes the stream.
            group.addTask {
                for try await buffer in localInbound {
                    var remaining = buffer
                    while remaining.readableBytes > 0, let slice = remaining.readSlice(length: min(remaining.readableBytes, 32768)) {
                        try await send(SPDY.data(stream: Self.dataStream, Array(slice.readableBytesView)))
                    }
                }
                try await send(SPDY.data(stream: Self.dataStream, flags: SPDY.flagFin, [UInt8]()))
            }
            // Pod → local, until the server ends the data stream.
            var parser = SPDY.Parser()
            var errorText: [UInt8] = []
            reading: while let frame = try await frames.next() {
                switch frame.opcode {
                case 0x0, 0x2: parser.append(frame.payload)
                case 0x8: break reading
                case 0x9: try await outbound.write(ByteBuffer(bytes: WebSocketFrames.maskedFrame(opcode: 0xA, payload: frame.payload)))
                default: continue
                }
                while let spdy = parser.next() {
                    switch spdy {
                    case .data(let stream, let flags, let payload):
                        if stream == Self.dataStream {
                            if !payload.isEmpty { try await localOutbound.write(ByteBuffer(bytes: payload)) }
                            if flags & SPDY.flagFin != 0 { break reading }
                        } else if stream == Self.errorStream {
                            errorText += payload
                        }
                    case .control(let type, _, let payload):
                        switch SPDY.ControlType(rawValue: type) {
                        case .rstStream?:
                            if SPDY.readUInt32(payload, at: 0) & 0x7fff_ffff == Self.dataStream { break reading }
                        case .ping?:
                            try await send(SPDY.control(.ping, payload))
                        case .goAway?:
                            break reading
                        default:
                            continue  // SYN_REPLY, SETTINGS, WINDOW_UPDATE, HEADERS
                        }
                    }
                }
            }
            if !errorText.isEmpty { forward.record(String(decoding: errorText, as: UTF8.self)) }
            localOutbound.finish()
            group.cancelAll()
        }
    }
}

/// The kubectl backend's port-forward: `kubectl port-forward pod/NAME :PORT --address 127.0.0.1`, the local port read
/// from its "Forwarding from 127.0.0.1:N -> PORT", its stderr lines about failed connections kept as the forward's
/// errors; kubectl is stopped (its process group killed) when `body` ends.
extension KubectlBackend {
    public func withPortForward<T: Sendable>(
        pod: String, namespace: String?, port: Int, _ body: (PortForward) async throws -> T
    ) async throws -> T {
        let namespace = namespace ?? defaultNamespace
        let target = Self.portForwardTarget(pod: pod, namespace: namespace, port: port)
        let what = "port-forward to \(target)"
        guard (1...65535).contains(port) else { throw KubeError(.badRequest, "\(what): not a TCP port") }
        var arguments = globalArguments.filter { !$0.hasPrefix("--request-timeout") }
        arguments += ["port-forward", "pod/\(pod)", ":\(port)", "--address", "127.0.0.1", "--namespace", namespace]
        let process: InteractiveProcess
        do {
            process = try InteractiveProcess(SpawnRequest(command: kubectl, arguments: arguments, environment: environment, stdout: .descriptor(-1)))
        } catch {
            throw KubeError(.kubectlFailed, "\(what): cannot run kubectl: \(error)")
        }
        process.closeStdin()
        let log = PortForward.ErrorLog()
        let (announced, announce) = AsyncStream<Int>.makeStream()
        // One reader of kubectl's output for its whole life: first the local port, then failed connections.
        let reader = Task { () -> String in
            var stdout = "", stderr = "", line = ""
            var found = false
            for await chunk in process.output {
                let text = String(decoding: chunk.bytes, as: UTF8.self)
                if chunk.stream == 1 {
                    stdout += text
                    if !found, let local = Self.forwardingPort(in: stdout) {
                        found = true
                        announce.yield(local)
                    }
                    if stdout.count > 1 << 16 { stdout = String(stdout.suffix(4096)) }
                } else {
                    if stderr.count < 1 << 16 { stderr += text }
                    line += text
                    while let newline = line.firstIndex(of: "\n") {
                        let complete = line[..<newline].trimmingCharacters(in: .whitespaces)
                        line.removeSubrange(...newline)
                        if complete.lowercased().contains("error") { log.record(complete) }
                    }
                }
            }
            announce.finish()
            return stderr
        }
        func stop() async {
            process.kill()
            _ = await process.waitForExit()
            _ = await reader.value
        }
        let local: Int?
        do {
            local = try await withDeadline(timeout, what: what) {
                var ports = announced.makeAsyncIterator()
                return await ports.next()
            }
        } catch {
            await stop()
            throw error
        }
        guard let local else {
            if Task.isCancelled {
                await stop()
                throw CancellationError()
            }
            // kubectl ended without forwarding: its own message says why (a missing pod, a pod not running, …).
            let code = await process.waitForExit()
            let stderr = await reader.value
            throw KubectlErrors.map(stderr: String(stderr.prefix(2000)), exitCode: code, what: what)
        }
        let forward = PortForward(localPort: local, target: target, log: log)
        do {
            let result = try await body(forward)
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    /// The local port in kubectl's "Forwarding from 127.0.0.1:N -> PORT".
    static func forwardingPort(in output: String) -> Int? {
        guard let range = output.range(of: "Forwarding from 127.0.0.1:") else { return nil }
        let digits = output[range.upperBound...].prefix { $0.isNumber }
        guard output[range.upperBound...].dropFirst(digits.count).hasPrefix(" ->") else { return nil }
        return Int(digits)
    }
}
