import Foundation

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

/// A process a fixture started. It is killed (TERM, then KILL) by `stop()`, which fixtures call from `defer`,
/// so a failing test leaves nothing behind.
public final class ChildProcess: @unchecked Sendable {  // Process is not Sendable; all mutation is under `lock`.
    public let name: String
    public let logURL: URL
    private let process = Process()
    private let lock = NSLock()
    private var stopped = false

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
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            // The child inherits the signal mask of the thread that spawns it, and Dispatch/Swift Testing worker
            // threads block nearly every signal: redis-server and gunicorn would then ignore SIGTERM and every
            // stop() would wait out its grace period before SIGKILL. Spawn with nothing blocked.
            var unblocked = sigset_t()
            var previous = sigset_t()
            sigemptyset(&unblocked)
            pthread_sigmask(SIG_SETMASK, &unblocked, &previous)
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            try process.run()
        } catch {
            throw FixtureError("\(name): cannot start \(executable.path): \(error)")
        }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Sends `signal` and waits up to `grace` for the exit, then kills. Safe to call twice.
    public func stop(signal: Int32 = SIGTERM, grace: Duration = .seconds(5)) {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        if process.isRunning {
            kill(process.processIdentifier, signal)
            let deadline = ContinuousClock.now + grace
            while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: logURL)
    }

    /// Waits until `port` on `host` accepts TCP connections, failing early if the process exits.
    public func waitForPort(_ port: Int, host: String = "127.0.0.1", timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                throw FixtureError("\(name) exited (status \(process.terminationStatus)) before listening on \(host):\(port):\n\(logTail())")
            }
            if TCPProbe.canConnect(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("\(name) did not listen on \(host):\(port) within \(timeout):\n\(logTail())")
    }
}

/// Small socket helpers for fixtures.
public enum TCPProbe {
    /// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw FixtureError("bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
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
        return code
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
