import Foundation
import HTTP
import KubeConfig
import KubeModel
import NIOCore
import NIOPosix
import NIOSSL

/// `pods/exec` for the REST backend: the remote command protocol (`v5.channel.k8s.io`, `v4` accepted) over a
/// WebSocket. libcurl here is built without WebSocket support (`curl-config --features` lists no `ws`), so this
/// is a small client over a NIO TCP connection with NIOSSL, using the kubeconfig's CA, client certificate and
/// token as the libcurl transport does. It writes the HTTP/1.1 upgrade itself and reads the frames itself (server
/// frames are unmasked; the only frames it sends are masked pongs and the closing frame).
///
/// Not supported here: `proxy-url` (the exec is refused with `.badRequest` naming it), stdin and tty.
extension RESTBackend {
    public func exec(pod: String, namespace: String?, container: String?, command: [String], timeout: Duration) async throws -> ExecResult {
        guard !command.isEmpty else { throw KubeError(.badRequest, "exec in pod \(pod): no command") }
        let what = "exec in pod \(pod)" + (container.map { " container \($0)" } ?? "")
        var query = command.map { ("command", $0) } + [("stdout", "true"), ("stderr", "true")]
        if let container { query.append(("container", container)) }
        let socket = try await webSocket(what: what)
        let path = socket.basePath + pathWithQuery(Resource.pods.path(namespace: namespace ?? defaultNamespace, name: pod, subresource: "exec"), query)
        return try await withDeadline(timeout, what: what) {
            try await socket.session(path: path, protocols: WebSocketExecSession.protocols) { frames, outbound, _ in
                try await WebSocketExecSession(what: what).exchange(frames: &frames, outbound: outbound)
            }
        }
    }

    /// Where and how a WebSocket to this API server connects: the kubeconfig's server, CA, client certificate and
    /// token, as the libcurl transport uses them.
    func webSocket(what: String) async throws -> APIWebSocket {
        let cluster = configuration.cluster
        if let proxy = cluster.proxyURL {
            throw KubeError(.badRequest, "\(what): a WebSocket through the kubeconfig's proxy-url \(proxy) is not supported by the REST backend; use --backend kubectl")
        }
        guard let url = URLComponents(string: cluster.server), let host = url.host, let scheme = url.scheme else {
            throw KubeError(.badRequest, "\(what): the server URL \(cluster.server) has no host")
        }
        let secure = scheme == "https"
        let port = url.port ?? (secure ? 443 : 80)
        let credential: Credential
        do {
            credential = try await credentials.current()
        } catch let error as KubeConfigError {
            throw KubeError(.unauthorized, "credentials for context '\(configuration.contextName)': \(error.message)")
        }
        var auth: [HTTPHeader] = []
        if let token = credential.bearerToken {
            auth.append(HTTPHeader("Authorization", "Bearer \(token.exposedString)"))
        } else if let basic = credential.basicAuth {
            let encoded = Data("\(basic.username):\(basic.password.exposedString)".utf8).base64EncodedString()
            auth.append(HTTPHeader("Authorization", "Basic \(encoded)"))
        }
        let tls: NIOSSLContext?
        if secure {
            do {
                var config = TLSConfiguration.makeClientConfiguration()
                if let ca = cluster.certificateAuthorityPEM { config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca)) }
                if cluster.insecureSkipTLSVerify { config.certificateVerification = .none }
                if let certificate = credential.clientCertificatePEM, let key = credential.clientKeyPEM {
                    config.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
                    config.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key.exposed, format: .pem))
                }
                config.applicationProtocols = ["http/1.1"]
                tls = try NIOSSLContext(configuration: config)
            } catch {
                throw KubeError(.tlsFailed, "\(what): the kubeconfig's TLS material for context '\(configuration.contextName)' is unusable: \(error)")
            }
        } else {
            tls = nil
        }
        let serverName = cluster.tlsServerName ?? host
        // SNI takes no IP address; without one NIOSSL checks the certificate against the peer's address.
        let sni: String? = Self.isIPAddress(serverName) ? nil : serverName
        let hostHeader = (url.port == nil) ? serverName : "\(serverName):\(port)"
        let basePath = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        return APIWebSocket(what: what, server: cluster.server, contextName: configuration.contextName, auth: auth, host: host, port: port,
                            tls: tls, sni: sni, hostHeader: hostHeader, basePath: basePath)
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

/// A WebSocket to the API server (exec, port-forward): one connection, the HTTP/1.1 upgrade written here, then
/// frames. libcurl here is built without WebSocket support, so this is a small client over NIO with NIOSSL.
struct APIWebSocket: Sendable {
    let what: String
    let server: String
    let contextName: String
    let auth: [HTTPHeader]
    let host: String
    let port: Int
    let tls: NIOSSLContext?
    let sni: String?
    let hostHeader: String
    /// The server URL's path, before `/api/...`.
    let basePath: String

    /// Connects, upgrades `path` offering `protocols`, and runs `body` with the frames that follow, the writer and the
    /// chosen subprotocol. Errors of the connection and TLS become `KubeError`s naming the server; a refusal before the
    /// upgrade is the server's Status; cancellation closes the connection.
    func session<T: Sendable>(
        path: String, protocols: [String],
        _ body: (inout WebSocketFrames, NIOAsyncChannelOutboundWriter<ByteBuffer>, String) async throws -> T
    ) async throws -> T {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            let tls = self.tls, sni = self.sni
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: sni))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw KubeError(.unreachable, "\(what): cannot connect to \(server) (context '\(contextName)'): \(error); is the cluster running and the server address right?")
        }
        let raw = channel.channel
        return try await withTaskCancellationHandler {
            do {
                return try await channel.executeThenClose { inbound, outbound in
                    var frames = WebSocketFrames(inbound.makeAsyncIterator())
                    let chosen = try await upgrade(&frames, outbound: outbound, path: path, protocols: protocols)
                    return try await body(&frames, outbound, chosen)
                }
            } catch let error as KubeError {
                throw error
            } catch is NIOSSLError {
                throw KubeError(.tlsFailed, "\(what): TLS with \(server) (context '\(contextName)') failed; check certificate-authority(-data), tls-server-name and the client certificate in the kubeconfig")
            } catch let error as BoringSSLError {
                throw KubeError(.tlsFailed, "\(what): TLS with \(server) (context '\(contextName)') failed: \(error); check certificate-authority(-data), tls-server-name and the client certificate in the kubeconfig")
            } catch {
                if Task.isCancelled { throw CancellationError() }
                throw KubeError(.unreachable, "\(what): the connection to \(server) (context '\(contextName)') broke: \(error)")
            }
        } onCancel: {
            raw.close(promise: nil)
        }
    }

    /// Writes the upgrade request and reads the response head; returns the subprotocol the server chose.
    private func upgrade(_ frames: inout WebSocketFrames, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, path: String,
                         protocols: [String]) async throws -> String {
        var keyBytes = [UInt8](repeating: 0, count: 16)
        for index in keyBytes.indices { keyBytes[index] = UInt8.random(in: 0...255) }
        var request = "GET \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: kverify/0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(Data(keyBytes).base64EncodedString())\r\nSec-WebSocket-Version: 13\r\n"
        request += "Sec-WebSocket-Protocol: \(protocols.joined(separator: ", "))\r\n"
        for header in auth { request += "\(header.name): \(header.value)\r\n" }
        request += "\r\n"
        try await outbound.write(ByteBuffer(string: request))

        // The response head.
        var headEnd: Int?
        while headEnd == nil {
            guard try await frames.readMore() else {
                throw KubeError(.unreachable, "\(what): \(server) closed the connection before answering the upgrade")
            }
            headEnd = WebSocketFrames.find([13, 10, 13, 10], in: frames.buffer)
            if headEnd == nil, frames.buffer.count > 1 << 16 { throw KubeError(.badResponse, "\(what): the upgrade's response head exceeds 64 KiB") }
        }
        let head = String(decoding: frames.buffer[..<headEnd!], as: UTF8.self)
        frames.buffer.removeFirst(headEnd! + 4)
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw KubeError(.badResponse, "\(what): not an HTTP response: \(lines[0].prefix(80).debugDescription)")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        guard status == 101 else {
            // A refusal before the upgrade (401, 403, 404 for a missing pod…): its body is a Status.
            let length = headers["content-length"].flatMap(Int.init)
            while length.map({ frames.buffer.count < $0 }) ?? true, frames.buffer.count < 1 << 20, try await frames.readMore() {}
            throw KubeError.from(httpStatus: status, body: Array(frames.buffer.prefix(length ?? frames.buffer.count)), contentType: headers["content-type"], what: what)
                .scrubbing(credentialsIn: auth)
        }
        guard let chosen = headers["sec-websocket-protocol"], protocols.contains(chosen) else {
            throw KubeError(.badResponse, "\(what): the server upgraded without choosing one of \(protocols) (got \(headers["sec-websocket-protocol"] ?? "none"))")
        }
        return chosen
    }
}

/// The server's side of a WebSocket after the upgrade: bytes read so far, cut into frames.
struct WebSocketFrames {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var buffer: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }

    /// Reads the next chunk into `buffer`; false at the end of the connection.
    mutating func readMore() async throws -> Bool {
        guard let chunk = try await iterator.next() else { return false }
        buffer += chunk.readableBytesView
        return true
    }

    /// The next complete frame, reading as needed; nil at the end of the connection.
    mutating func next() async throws -> Frame? {
        while true {
            if let frame = try Self.nextFrame(&buffer) { return frame }
            guard try await readMore() else { return nil }
        }
    }

    struct Frame {
        var fin: Bool
        var opcode: UInt8
        var payload: [UInt8]
    }

    /// Takes one complete frame off the front of `buffer`, or nil when it holds none yet.
    static func nextFrame(_ buffer: inout [UInt8]) throws -> Frame? {
        guard buffer.count >= 2 else { return nil }
        let fin = buffer[0] & 0x80 != 0, opcode = buffer[0] & 0x0F
        let masked = buffer[1] & 0x80 != 0
        var length = Int(buffer[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard buffer.count >= 4 else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return nil }
            length = buffer[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
            guard length < 1 << 30 else { throw KubeError(.badResponse, "a WebSocket frame of \(length) bytes") }
        }
        var mask: [UInt8] = []
        if masked {
            guard buffer.count >= offset + 4 else { return nil }
            mask = Array(buffer[offset..<offset + 4])
            offset += 4
        }
        guard buffer.count >= offset + length else { return nil }
        var payload = Array(buffer[offset..<offset + length])
        if masked { for index in payload.indices { payload[index] ^= mask[index % 4] } }
        buffer.removeFirst(offset + length)
        return Frame(fin: fin, opcode: opcode, payload: payload)
    }

    /// A client frame: clients must mask what they send (RFC 6455 §5.3).
    static func maskedFrame(opcode: UInt8, payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 1 << 16 {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        return frame
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// One exec: the remote command protocol's channel messages until the server closes.
struct WebSocketExecSession: Sendable {
    let what: String

    static let protocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"]

    func exchange(frames: inout WebSocketFrames, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> ExecResult {
        var stdout: [UInt8] = [], stderr: [UInt8] = []
        var statusMessage: [UInt8]?
        var message: [UInt8] = []
        var closed = false
        frames: while let frame = try await frames.next() {
            switch frame.opcode {
            case 0x0, 0x1, 0x2:
                message += frame.payload
                guard frame.fin else { continue }
                defer { message = [] }
                guard let channel = message.first else { continue }
                let body = message.dropFirst()
                switch channel {
                case 1: stdout += body
                case 2: stderr += body
                case 3: statusMessage = (statusMessage ?? []) + body
                default: continue  // 255: a channel closed (v5); nothing to do for output
                }
            case 0x8:
                try? await outbound.write(ByteBuffer(bytes: WebSocketFrames.maskedFrame(opcode: 0x8, payload: Array(frame.payload.prefix(2)))))
                closed = true
                break frames
            case 0x9:
                try await outbound.write(ByteBuffer(bytes: WebSocketFrames.maskedFrame(opcode: 0xA, payload: frame.payload)))
            default:
                continue
            }
        }
        guard let statusMessage else {
            throw KubeError(.unreachable, "\(what): the stream ended (\(closed ? "closed" : "connection dropped")) without the command's exit status")
        }
        let decoded = try decodeObject(Status.self, Data(statusMessage), what: "\(what): the error channel")
        if decoded.status == "Success" { return ExecResult(stdout: stdout, stderr: stderr, exitCode: 0) }
        if decoded.reason == "NonZeroExitCode",
           let code = decoded.details?.causes?.first(where: { $0.reason == "ExitCode" })?.message.flatMap({ Int32($0) }) {
            return ExecResult(stdout: stdout, stderr: stderr, exitCode: code)
        }
        throw KubeError.from(httpStatus: decoded.code ?? 500, body: statusMessage, contentType: "application/json", what: what)
    }
}
