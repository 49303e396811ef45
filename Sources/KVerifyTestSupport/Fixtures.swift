import Foundation
import Processes

/// A real `redis-server` on a free loopback port, without persistence, stopped by `stop()`.
public final class RedisServerFixture: Sendable {
    public let port: Int
    public let password: String?
    private let process: ChildProcess

    /// - Parameters:
    ///   - password: sets `requirepass` (the `default` user's password).
    ///   - aclUsers: extra ACL users as `name password` pairs, each with full access.
    public init(password: String? = nil, aclUsers: [(String, String)] = []) async throws {
        port = try TCPProbe.freePort()
        self.password = password
        var arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        if let password { arguments += ["--requirepass", password] }
        // One argument per ACL token: redis-server quotes a single argument with spaces as one token.
        for (user, secret) in aclUsers { arguments += ["--user", user, "on", ">\(secret)", "~*", "&*", "+@all"] }
        process = try ChildProcess(
            name: "redis-server", executable: try Self.which("redis-server"), arguments: arguments)
        do {
            try await process.waitForPort(port)
        } catch {
            process.stop()
            throw error
        }
    }

    public var address: String { "127.0.0.1:\(port)" }
    public var pid: Int32 { process.pid }
    public func stop() { process.stop() }

    /// Runs `body` with a fresh server and stops it afterwards, also when `body` throws.
    public static func with<T>(
        password: String? = nil, _ body: (RedisServerFixture) async throws -> T
    ) async throws -> T {
        let redis = try await RedisServerFixture(password: password)
        defer { redis.stop() }
        return try await body(redis)
    }

    static func which(_ tool: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let searched = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"]
        for directory in searched {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent(tool)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw FixtureError("\(tool) not found on PATH; run scripts/bootstrap.sh")
    }
}

/// The demo app (manifests/app) under real gunicorn with the real Gunicorn Prometheus Exporter in Redis mode.
public final class GunicornExporterFixture: Sendable {
    /// How the exporter is wired (see manifests/app/gunicorn_conf.py).
    public enum Mode: String, Sendable {
        /// `redis_when_ready`: the master serves /metrics from Redis.
        case embedded
        /// `default_when_ready` with Redis on and no multiprocess dir: the metrics server is silently skipped.
        case metricsServerSkipped = "default"
    }

    public let appPort: Int
    public let metricsPort: Int
    public let keyPrefix: String
    private let process: ChildProcess
    /// gunicorn's working directory, removed by `stop()`.
    private let scratch: URL

    public init(
        redisPort: Int,
        mode: Mode = .embedded,
        workers: Int = 2,
        ttlSeconds: Int = 300,
        ttlDisabled: Bool = false,
        keyPrefix: String = "gunicorn"
    ) async throws {
        appPort = try TCPProbe.freePort()
        metricsPort = try TCPProbe.freePort()
        self.keyPrefix = keyPrefix
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-gunicorn-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let gunicorn = RepositoryPaths.venvBin.appendingPathComponent("gunicorn")
        guard FileManager.default.isExecutableFile(atPath: gunicorn.path) else {
            throw FixtureError("\(gunicorn.path) missing; run scripts/bootstrap.sh")
        }
        process = try ChildProcess(
            name: "gunicorn",
            executable: gunicorn,
            // prometheus_client writes multiprocess .db files into the working directory (PROMETHEUS_MULTIPROC_DIR
            // is set but empty in Redis mode), so gunicorn runs in a scratch directory, never in the source tree.
            arguments: ["-c", RepositoryPaths.demoApp.appendingPathComponent("gunicorn_conf.py").path,
                        "--pythonpath", RepositoryPaths.demoApp.path, "app:application"],
            environment: [
                "APP_BIND": "127.0.0.1:\(appPort)",
                "GUNICORN_WORKERS": "\(workers)",
                "EXPORTER_MODE": mode.rawValue,
                "PROMETHEUS_METRICS_PORT": "\(metricsPort)",
                "PROMETHEUS_BIND_ADDRESS": "127.0.0.1",
                "PROMETHEUS_MULTIPROC_DIR": "",
                "REDIS_ENABLED": "true",
                "REDIS_HOST": "127.0.0.1",
                "REDIS_PORT": "\(redisPort)",
                "REDIS_KEY_PREFIX": keyPrefix,
                "REDIS_TTL_SECONDS": "\(ttlSeconds)",
                "REDIS_TTL_DISABLED": ttlDisabled ? "true" : "false",
            ],
            workingDirectory: scratch)
        do {
            try await process.waitForPort(appPort)
            switch mode {
            case .embedded: try await process.waitForPort(metricsPort)
            // The master's when_ready hook has run (and skipped the server) once it says so.
            case .metricsServerSkipped: try await process.waitForLog(containing: "skipping metrics server")
            }
        } catch {
            process.stop()
            try? FileManager.default.removeItem(at: scratch)
            throw error
        }
    }

    public var metricsURL: String { "http://127.0.0.1:\(metricsPort)/metrics" }
    /// Everything gunicorn and the exporter printed so far.
    public var log: String { process.logTail(lines: Int.max) }

    /// Sends `count` GET / requests to the app so the workers' counters, histograms and gauges are written.
    /// Blocking sockets, so on a thread of its own.
    public func sendTraffic(_ count: Int) async throws {
        try await runBlocking { [self] in try sendTrafficBlocking(count) }
    }

    /// The same from synchronous code (a callback), on the caller's thread.
    public func sendTrafficBlocking(_ count: Int) throws {
        for _ in 0..<count {
            let status = try TCPProbe.httpGet(port: appPort, path: "/")
            guard status == 200 else { throw FixtureError("GET / on the demo app answered \(status)") }
        }
    }

    public func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Starts Redis and the exporter, runs `body`, and stops both, also when `body` throws.
    public static func withRedis<T>(
        mode: Mode = .embedded,
        ttlSeconds: Int = 300,
        ttlDisabled: Bool = false,
        _ body: (GunicornExporterFixture, RedisServerFixture) async throws -> T
    ) async throws -> T {
        let redis = try await RedisServerFixture()
        defer { redis.stop() }
        let exporter = try await GunicornExporterFixture(
            redisPort: redis.port, mode: mode, ttlSeconds: ttlSeconds, ttlDisabled: ttlDisabled)
        defer { exporter.stop() }
        return try await body(exporter, redis)
    }
}
