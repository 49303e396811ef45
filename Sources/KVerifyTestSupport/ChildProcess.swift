import Foundation
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// Where the repository and its neighbours are, found from this file's path so tests work from any directory.
public enum RepositoryPaths {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // KVerifyTestSupport
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()

    /// `../shared` beside the checkout (seeds, reference, the OpenMetrics corpus).
    public static let shared: URL = root.deletingLastPathComponent().appendingPathComponent("shared")

    public static let venvBin: URL = root.appendingPathComponent(".venv/bin")
    public static let demoApp: URL = root.appendingPathComponent("manifests/app")

    /// The built `kverify` executable of the current build (the test bundle sits beside it).
    public static var kverifyExecutable: URL {
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent("kverify"),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kverify"),
            root.appendingPathComponent(".build/debug/kverify"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates.last!
    }
}

/// Errors raised by fixtures: which process, what it was waiting for, and the tail of its log.
public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A process a fixture started, in a process group of its own so `stop()` reaches its children too (gunicorn's
/// workers). Spawned with posix_spawn and a cleared signal mask: Foundation's Process lets the child inherit the
/// test runner's blocked signals, and such a child ignores SIGTERM. `stop()` is called from `defer`, so a failing
/// test leaves nothing behind.
public final class ChildProcess: @unchecked Sendable {  // mutable state (`exitStatus`, `stopped`) is under `lock`
    public let name: String
    public let logURL: URL
    public let pid: pid_t
    private let lock = NSLock()
    private var stopped = false
    private var exitStatus: Int32?

    public init(
        name: String,
        executable: URL,
        arguments: [String],
        environment: [String: String] = [:],
        workingDirectory: URL? = nil
    ) throws {
        self.name = name
        logURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("kverify-\(name)-\(UUID().uuidString.prefix(8)).log")

        do {
            pid = try Spawn.start(SpawnRequest(
                command: executable.path, arguments: arguments,
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                workingDirectory: workingDirectory?.path, stdout: .file(path: logURL.path, append: false)))
        } catch {
            throw FixtureError("\(name): \(error)")
        }
    }

    public var isRunning: Bool { lock.withLock { reap(block: false) == nil } }

    /// The exit code once the process exited normally (nil while it runs, or when a signal ended it).
    public var exitCode: Int32? {
        lock.withLock {
            guard let status = reap(block: false), status & 0x7f == 0 else { return nil }
            return (status >> 8) & 0xff
        }
    }

    /// Exit status once the process ended (`nil` while it runs). Caller holds `lock`.
    private func reap(block: Bool) -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let result = waitpid(pid, &status, block ? 0 : WNOHANG)
        if result == pid || (result < 0 && errno == ECHILD) {
            exitStatus = status
            return status
        }
        return nil
    }

    public func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Sends `signal` to the whole process group, waits up to `grace`, then kills the group. Safe to call twice.
    public func stop(signal: Int32 = SIGTERM, grace: Duration = .seconds(5)) {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        kill(-pid, signal)
        let deadline = ContinuousClock.now + grace
        while reap(block: false) == nil && ContinuousClock.now < deadline { usleep(10_000) }
        // Whatever is left of the group (a stubborn leader, orphaned workers) is killed outright.
        kill(-pid, SIGKILL)
        _ = reap(block: true)
        try? FileManager.default.removeItem(at: logURL)
    }

    /// Waits until the process's output contains `text`, failing early if the process exits.
    public func waitForLog(containing text: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if logTail(lines: 10_000).contains(text) { return }
            if !isRunning { throw FixtureError("\(name) exited before logging '\(text)':\n\(logTail())") }
            try await Task.sleep(for: .milliseconds(50))
        }
        if logTail(lines: 10_000).contains(text) { return }
        throw FixtureError("\(name) did not log '\(text)' within \(timeout):\n\(logTail())")
    }

    /// Waits until `port` on `host` accepts TCP connections, failing early if the process exits.
    public func waitForPort(_ port: Int, host: String = "127.0.0.1", timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isRunning {
                throw FixtureError("\(name) exited before listening on \(host):\(port):\n\(logTail())")
            }
            if TCPProbe.canConnect(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        // One last look: on a loaded machine this task may have been off the CPU past the deadline while the
        // process came up.
        if TCPProbe.canConnect(host: host, port: port) { return }
        throw FixtureError("\(name) did not listen on \(host):\(port) within \(timeout):\n\(logTail())")
    }
}

/// Small socket helpers for fixtures.
public enum TCPProbe {
    /// A port on 127.0.0.1 that was free a moment ago. Chosen at random below Linux's ephemeral range
    /// (32768–60999): a port the kernel hands out for `bind(0)` is also what outgoing connections (curl, kubectl,
    /// redis clients in parallel tests) get, so a server started on it a moment later could find it taken.
    public static func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 10_000..<32_000)
            // Never the same port twice in one test run: two fixtures starting at once would both find it free.
            guard canBind(port), handedOut.withLock({ $0.insert(port).inserted }) else { continue }
            return port
        }
        throw FixtureError("no free port found in 10000..<32000 after 200 tries")
    }

    private static let handedOut = PortSet()

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    public static func canConnect(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        inet_pton(AF_INET, host, &address.sin_addr)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// One HTTP/1.0 GET over a plain socket; returns the status code. Fixtures use it to send traffic
    /// without depending on the code under test.
    @discardableResult
    public static func httpGet(host: String = "127.0.0.1", port: Int, path: String) throws -> Int {
        try httpResponse(host: host, port: port, path: path).status
    }

    /// One HTTP/1.0 GET: the status code and the whole response (headers and body) as text.
    public static func httpResponse(host: String = "127.0.0.1", port: Int, path: String) throws -> (status: Int, text: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw FixtureError("GET \(host):\(port)\(path): connection refused") }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let statusLine = String(decoding: response.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let code = Int(parts[1]) else {
            throw FixtureError("GET \(host):\(port)\(path): no HTTP status line in \(statusLine.debugDescription)")
        }
        return (code, String(decoding: response, as: UTF8.self))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

/// The ports `freePort()` has handed out in this process.
private final class PortSet: @unchecked Sendable {  // `ports` is only touched under `lock`
    private let lock = NSLock()
    private var ports: Set<Int> = []

    func withLock<T>(_ body: (inout Set<Int>) -> T) -> T {
        lock.withLock { body(&ports) }
    }
}
