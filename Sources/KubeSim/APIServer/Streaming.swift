import Foundation
import SimFaults
import SimStore
import KubeModel
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// What the node offers the API server's streaming routes (exec, attach). The kubelet implements it; the facade
/// (`SimulatedCluster`) wires it in, so the API server does not depend on the node.
package protocol PodStreams: Sendable {
    /// Starts `command` in the environment of a running container.
    /// - Throws: `APIError` naming the pod and container when it cannot (not running, no such container).
    func exec(namespace: String, pod: String, container: String, command: [String]) throws -> StreamSession
    /// Follows a running container's output (and its stdin, when the container was created with `stdin: true`).
    /// - Throws: `APIError` when the container is not running.
    func attach(namespace: String, pod: String, container: String) throws -> StreamSession
}

/// One exec or attach as the API server drives it.
package struct StreamSession: Sendable {
    /// Output chunks: channel 1 (stdout) or 2 (stderr), until the process ended and its output was read.
    package var output: AsyncStream<(channel: UInt8, bytes: [UInt8])>
    /// Writes to the process's stdin; nil when it has none.
    package var writeStdin: (@Sendable ([UInt8]) -> Void)?
    /// Ends the process's stdin (EOF).
    package var closeStdin: @Sendable () -> Void
    /// Waits for the process to end; its exit code.
    package var exitCode: @Sendable () async -> Int32
    /// The client went away: stop what the session started (an exec's process; an attach only stops following).
    package var cancel: @Sendable () -> Void

    package init(output: AsyncStream<(channel: UInt8, bytes: [UInt8])>, writeStdin: (@Sendable ([UInt8]) -> Void)?,
                 closeStdin: @escaping @Sendable () -> Void, exitCode: @escaping @Sendable () async -> Int32,
                 cancel: @escaping @Sendable () -> Void) {
        self.output = output
        self.writeStdin = writeStdin
        self.closeStdin = closeStdin
        self.exitCode = exitCode
        self.cancel = cancel
    }
}

/// A request for a stream (`pods/NAME/exec|attach|portforward`) and the WebSocket subprotocol chosen for it.
package struct StreamRequest: Sendable {
    static let remoteCommandProtocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
    static let portForwardProtocol = "SPDY/3.1+portforward.k8s.io"

    var request: APIRequest
    var namespace: String
    var pod: String
    var subresource: String
    var subprotocol: String
    /// Every value of each query parameter (`command` repeats).
    var values: [String: [String]]

    /// The request a WebSocket upgrade asks for, when it is one the sim streams and offers a protocol it speaks.
    init?(_ head: HTTPRequestHead) {
        let offered = head.headers["Sec-WebSocket-Protocol"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let isPortForward = head.uri.split(separator: "?").first?.hasSuffix("/portforward") ?? false
        let supported = isPortForward ? [Self.portForwardProtocol] : Self.remoteCommandProtocols
        guard let chosen = supported.first(where: offered.contains) else { return nil }
        self.init(head, subprotocol: chosen)
    }

    /// The legacy upgrade kubectl falls back to: `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version:
    /// portforward.k8s.io`, for port-forward only (exec and attach over SPDY are refused with a Status).
    init?(spdy head: HTTPRequestHead) {
        let versions = head.headers["X-Stream-Protocol-Version"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard versions.contains(Self.legacyPortForwardProtocol) else { return nil }
        self.init(head, subprotocol: Self.legacyPortForwardProtocol)
        guard subresource == "portforward" else { return nil }
    }

    static let legacyPortForwardProtocol = "portforward.k8s.io"

    private init?(_ head: HTTPRequestHead, subprotocol chosen: String) {
        let request = APIRequest(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: Data())
        guard let target = ResourceTarget(segments: request.segments), target.resource.plural == "pods",
              let namespace = target.namespace, let pod = target.name,
              let subresource = target.subresource, ["exec", "attach", "portforward"].contains(subresource) else { return nil }
        self.request = request
        self.namespace = namespace
        self.pod = pod
        self.subresource = subresource
        subprotocol = chosen
        var values: [String: [String]] = [:]
        for pair in (request.rawQuery ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            values[parts[0], default: []].append(parts.count > 1 ? parts[1] : "")
        }
        self.values = values
    }

    func flag(_ name: String) -> Bool { ["true", "1"].contains(values[name]?.first?.lowercased() ?? "") }
}

/// The channels of the remote command protocol (v4, v5) on a WebSocket: one binary message per chunk, whose first
/// byte names the channel.
enum RemoteCommandChannel {
    static let stdin: UInt8 = 0, stdout: UInt8 = 1, stderr: UInt8 = 2, error: UInt8 = 3, resize: UInt8 = 4
    /// v5: `[255, channel]` — that channel has ended.
    static let close: UInt8 = 255
}

/// Serves one exec or attach over an upgraded WebSocket: validates the pod and container, starts the session, pumps
/// output out and stdin in, answers pings, and ends with the `metav1.Status` on the error channel, as the kubelet does.
struct RemoteCommandSession {
    let stream: StreamRequest
    let store: ObjectStore
    let streams: (any PodStreams)?
    /// `exec.cutRate` decides whether this session's connection is lost after its command ran.
    var faults: FaultSwitch?

    func run(inbound: NIOAsyncChannelInboundStream<WebSocketFrame>, send: WebSocketSender) async {
        let session: StreamSession
        do {
            session = try start()
        } catch let error as APIError {
            send.binary([RemoteCommandChannel.error] + [UInt8](error.status.data))
            send.close()
            return
        } catch {
            send.binary([RemoteCommandChannel.error] + [UInt8](APIError.internalError("\(error)").status.data))
            send.close()
            return
        }
        let wantsStdin = stream.flag("stdin")
        if !wantsStdin { session.closeStdin() }
        let wantsStdout = stream.flag("stdout"), wantsStderr = stream.flag("stderr")
        let command = stream.values["command"] ?? []
        let isExec = stream.subresource == "exec"
        let cut = isExec && Double.random(in: 0..<1) < (faults?.plan.execCutRate ?? 0)
        await withTaskGroup(of: Bool.self) { group in
            // Output, then the final status: when this ends, the session is over.
            group.addTask {
                if cut {
                    // The fault: the command runs to its end, then the connection just ends (no output, no Status,
                    // no close frame), as when a connection is lost mid-stream.
                    for await _ in session.output {}
                    _ = await session.exitCode()
                    return true
                }
                for await chunk in session.output {
                    if chunk.channel == RemoteCommandChannel.stdout, !wantsStdout { continue }
                    // Without a stderr stream the kubelet drops it (a tty would merge it; the sim has none).
                    if chunk.channel == RemoteCommandChannel.stderr, !wantsStderr { continue }
                    send.binary([chunk.channel] + chunk.bytes)
                }
                let code = await session.exitCode()
                let status: JSONValue
                if code == 0 || !isExec {
                    status = ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success"]
                } else {
                    status = ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure",
                              "message": .string("command terminated with non-zero exit code: error executing command \(command), exit code \(code)"),
                              "reason": "NonZeroExitCode",
                              "details": ["causes": [["reason": "ExitCode", "message": .string(String(code))]]]]
                }
                send.binary([RemoteCommandChannel.error] + [UInt8](status.data))
                send.close()
                return true
            }
            // Stdin, resize, close signals, pings; ends when the client goes away.
            group.addTask {
                do {
                    for try await frame in inbound {
                        switch frame.opcode {
                        case .binary, .text:
                            let bytes = [UInt8](frame.unmaskedData.readableBytesView)
                            guard let channel = bytes.first else { continue }
                            if channel == RemoteCommandChannel.stdin, wantsStdin {
                                session.writeStdin?(Array(bytes.dropFirst()))
                            } else if channel == RemoteCommandChannel.close, bytes.count > 1, bytes[1] == RemoteCommandChannel.stdin {
                                session.closeStdin()
                            }
                        case .ping:
                            send.pong(frame.unmaskedData)
                        case .connectionClose:
                            return false
                        default:
                            continue
                        }
                    }
                } catch {}
                return false
            }
            let finished = await group.next() ?? false
            if !finished { session.cancel() }
            group.cancelAll()
        }
    }

    /// Resolves the pod and container as the API server and kubelet do, then asks the node.
    private func start() throws -> StreamSession {
        if stream.flag("tty") {
            throw APIError.badRequest("kverify sim: tty is not supported (pod processes run without a terminal); run kubectl without -t")
        }
        let pod = try store.get(ResourceCatalog.all[2], namespace: stream.namespace, name: stream.pod)
        let containers = (pod.value(at: ["spec", "containers"])?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        let container: String
        if let requested = stream.values["container"]?.first, !requested.isEmpty {
            guard containers.contains(requested) else {
                throw APIError.badRequest("container \(requested) is not valid for pod \(stream.pod)")
            }
            container = requested
        } else if containers.count == 1 {
            container = containers[0]
        } else {
            throw APIError.badRequest("a container name must be specified for pod \(stream.pod), choose one of: [\(containers.joined(separator: " "))]")
        }
        let phase = pod.string(at: "status", "phase") ?? "Pending"
        guard phase == "Running" else {
            throw APIError.badRequest("unable to upgrade connection: pod \(stream.pod) is not running (phase \(phase)): container not found (\"\(container)\")")
        }
        guard let streams else {
            throw APIError.badRequest("kverify sim: this sim runs no kubelet (kubelet mode is not processes), so there is no process to \(stream.subresource)")
        }
        if stream.subresource == "exec" {
            let command = stream.values["command"] ?? []
            guard !command.isEmpty else { throw APIError.badRequest("you must specify at least 1 command") }
            return try streams.exec(namespace: stream.namespace, pod: stream.pod, container: container, command: command)
        }
        return try streams.attach(namespace: stream.namespace, pod: stream.pod, container: container)
    }
}

/// Writes server frames (never masked) through one ordered queue, so output, statuses and pongs from several tasks
/// do not interleave inside a frame.
struct WebSocketSender: Sendable {
    let continuation: AsyncStream<WebSocketFrame>.Continuation

    func binary(_ bytes: [UInt8]) {
        continuation.yield(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: bytes)))
    }

    func pong(_ data: ByteBuffer) {
        continuation.yield(WebSocketFrame(fin: true, opcode: .pong, data: data))
    }

    /// A normal closure (1000), after which the writer stops.
    func close() {
        var data = ByteBuffer()
        data.writeInteger(UInt16(1000))
        continuation.yield(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
        continuation.finish()
    }
}
