import Foundation
import SimFaults
import SimStore
import KubeModel
import NIOCore
import NIOPosix

/// A container's probe as the spec gives it, with the kubelet's defaults.
package struct ProbeSpec: Sendable {
    enum Action: Sendable {
        case httpGet(host: String?, port: String, path: String, scheme: String, headers: [(String, String)])
        case tcpSocket(host: String?, port: String)
        case exec(command: [String])
    }

    var action: Action
    var initialDelay: Duration
    var period: Duration
    var timeout: Duration
    var successThreshold: Int
    var failureThreshold: Int

    init?(_ json: JSONValue?) {
        guard let json, json.objectValue != nil else { return nil }
        func portText(_ value: JSONValue?) -> String {
            if let number = value?.intValue { return String(number) }
            return value?.stringValue ?? ""
        }
        if let http = json["httpGet"] {
            let headers = (http["httpHeaders"]?.arrayValue ?? []).compactMap { header -> (String, String)? in
                guard let name = header["name"]?.stringValue else { return nil }
                return (name, header["value"]?.stringValue ?? "")
            }
            action = .httpGet(host: http["host"]?.stringValue, port: portText(http["port"]), path: http["path"]?.stringValue ?? "/",
                              scheme: http["scheme"]?.stringValue ?? "HTTP", headers: headers)
        } else if let tcp = json["tcpSocket"] {
            action = .tcpSocket(host: tcp["host"]?.stringValue, port: portText(tcp["port"]))
        } else if let command = json.value(at: ["exec", "command"])?.arrayValue {
            action = .exec(command: command.compactMap(\.stringValue))
        } else {
            return nil
        }
        func seconds(_ key: String, _ fallback: Int) -> Int { max(json[key]?.intValue ?? fallback, 0) }
        initialDelay = .seconds(seconds("initialDelaySeconds", 0))
        period = .seconds(max(seconds("periodSeconds", 10), 1))
        timeout = .seconds(max(seconds("timeoutSeconds", 1), 1))
        successThreshold = max(seconds("successThreshold", 1), 1)
        failureThreshold = max(seconds("failureThreshold", 3), 1)
    }
}

/// The outcome of one probe: success, or the failure message the kubelet would put into an `Unhealthy` event.
package enum ProbeOutcome: Sendable, Equatable {
    case success
    case failure(String)
}

/// Runs httpGet and tcpSocket probes over NIO (never blocking the cooperative pool), as the kubelet does:
/// HTTP status 200–399 is success, anything else or no answer within the timeout a failure.
package struct ProbeClient: Sendable {
    let group: any EventLoopGroup

    func http(host: String, port: Int, path: String, headers: [(String, String)], timeout: Duration) async -> ProbeOutcome {
        var request = "GET \(path.hasPrefix("/") ? path : "/" + path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let url = "http://\(host):\(port)\(path)"
        do {
            let statusLine = try await exchange(host: host, port: port, send: request, timeout: timeout)
            let parts = statusLine.split(separator: " ")
            guard parts.count >= 2, let code = Int(parts[1]) else {
                return .failure("Readiness probe failed: Get \"\(url)\": malformed HTTP response \(statusLine.prefix(40).debugDescription)")
            }
            return (200..<400).contains(code) ? .success : .failure("HTTP probe failed with statuscode: \(code)")
        } catch let error as ProbeError {
            return .failure("Get \"\(url)\": \(error.message)")
        } catch {
            return .failure("Get \"\(url)\": \(error)")
        }
    }

    func tcp(host: String, port: Int, timeout: Duration) async -> ProbeOutcome {
        do {
            _ = try await exchange(host: host, port: port, send: nil, timeout: timeout)
            return .success
        } catch let error as ProbeError {
            return .failure("dial tcp \(host):\(port): \(error.message)")
        } catch {
            return .failure("dial tcp \(host):\(port): \(error)")
        }
    }

    struct ProbeError: Error { var message: String }

    /// Connects; with `send`, writes it and returns the first response line; without, returns "" once connected.
    private func exchange(host: String, port: Int, send: String?, timeout: Duration) async throws -> String {
        let loop = group.next()
        let promise = loop.makePromise(of: String.self)
        let nanos = Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let deadline = loop.scheduleTask(in: .nanoseconds(nanos)) {
            promise.fail(ProbeError(message: "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(nanos))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StatusLineHandler(promise: promise))
                }
            }
        // A pod IP needs no resolver: by name, every probe ran getaddrinfo and Happy Eyeballs (a fifth of an idle
        // 500-pod sim's CPU, perf).
        let connected = if let address = try? SocketAddress(ipAddress: host, port: port) {
            bootstrap.connect(to: address)
        } else {
            bootstrap.connect(host: host, port: port)
        }
        connected.whenComplete { result in
            switch result {
            case .failure(let error):
                let text = "\(error)"
                promise.fail(ProbeError(message: text.contains("refused") || text.contains("111") ? "connect: connection refused" : text))
            case .success(let channel):
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                if let send {
                    channel.writeAndFlush(ByteBuffer(string: send), promise: nil)
                } else {
                    promise.succeed("")
                }
            }
        }
        defer { deadline.cancel() }
        return try await promise.futureResult.get()
    }

    /// Collects bytes until the first CRLF and fulfils the promise with that line.
    private final class StatusLineHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<String>
        var buffer = ""

        init(promise: EventLoopPromise<String>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            buffer += bytes.readString(length: bytes.readableBytes) ?? ""
            if let end = buffer.range(of: "\r\n") {
                promise.succeed(String(buffer[..<end.lowerBound]))
            } else if buffer.utf8.count > 4096 {
                promise.fail(ProbeError(message: "response line longer than 4 KiB"))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ProbeError(message: buffer.isEmpty ? "EOF" : "connection closed before a full status line"))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(ProbeError(message: "\(error)"))
            context.close(promise: nil)
        }
    }
}
