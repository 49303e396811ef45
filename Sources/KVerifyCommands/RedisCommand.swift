import ArgumentParser
import Findings
import Foundation
import RESP
import RedisAudit

extension KVerify {
    /// `kverify redis`: audits the exporter's keys in Redis and, with `--expect-expiry`, watches them expire.
    public struct Redis: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "redis",
            abstract: "Audit the Gunicorn Prometheus Exporter's Redis keys: TTLs, layout, pairing, expiry.",
            discussion: """
                Streams through every key under PREFIX:* with SCAN (never KEYS), pipelining TYPE + PTTL per key and \
                HGETALL on a sample. With --expect-expiry it then samples the keyspace until every key has expired \
                (or --expiry-timeout passes) and reports a timeline.

                CHECKS
                  redis.keys.present-per-type   fail: no counter, histogram or gauge_* metric key under the prefix
                  redis.ttl.missing             fail: keys with no TTL (PTTL -1); they would live forever
                  redis.ttl.above-configured    fail: keys whose TTL exceeds --ttl
                  redis.ttl.distribution        info: min/max TTL and how many keys sit in each quarter of --ttl
                  redis.layout.unexpected-key   warn: keys under the prefix not shaped {prefix}:{type}:{pid}:{metric|meta}:{md5}
                  redis.key.not-hash            fail: exporter-shaped keys that are not hashes
                  redis.meta.unpaired           fail: metric key without its meta twin (warn: meta without metric)
                  redis.hash.missing-field      fail: sampled metric hash without numeric value/timestamp, meta without original_key
                  redis.expiry.refreshed        (--expect-expiry) writes reset TTLs to about --ttl; warn if no write was seen
                  redis.expiry.all-expired      (--expect-expiry) every key is gone before --expiry-timeout
                  redis.expiry.within-ttl       (--expect-expiry) the last key went within TTL + slack of the last write

                The password is read from the environment variable named by --password-env; it is never accepted as \
                an argument and never printed. Connection, authentication (NOAUTH, WRONGPASS) and protocol failures \
                exit 3.

                \(ExitStatus.documentation)
                """)

        @Option(help: ArgumentHelp("Redis server address.", valueName: "host:port"))
        var addr: String

        @Option(help: ArgumentHelp("Read the Redis password from this environment variable.", valueName: "var"))
        var passwordEnv: String?

        @Option(help: ArgumentHelp("ACL user name (needs --password-env).", valueName: "name"))
        var user: String?

        @Option(help: "Redis logical database (REDIS_DB).")
        var db: Int = 0

        @Option(help: "Key prefix (REDIS_KEY_PREFIX).")
        var prefix: String = "gunicorn"

        @Option(help: ArgumentHelp("The exporter's REDIS_TTL_SECONDS.", valueName: "seconds"))
        var ttl: Int = 300

        @Flag(help: "After the audit, watch every key expire (stop traffic first, or while kverify watches).")
        var expectExpiry = false

        @Option(help: ArgumentHelp("How long to wait for every key to expire (default: 2 × TTL + 10s; at most 168h).", valueName: "duration"))
        var expiryTimeout: DurationArgument?

        @Option(help: ArgumentHelp("Deadline for connecting and for each pipelined batch (at most 168h).", valueName: "duration"))
        var timeout: DurationArgument = DurationArgument(.seconds(10), text: "10s")

        @OptionGroup var output: OutputOptions

        /// The largest `--ttl`/`--redis-ttl`: a year of seconds.
        static let maximumTTL = 365 * 24 * 3600

        public init() {}

        public func validate() throws {
            guard case .success = RedisEndpoint.parse(addr) else {
                if case .failure(let error) = RedisEndpoint.parse(addr) { throw ValidationError("--addr \(error)") }
                return
            }
            guard db >= 0 else { throw ValidationError("--db \(db): expected a database number ≥ 0") }
            // Bounded so that 2 × TTL + 10 s, the default --expiry-timeout, cannot overflow.
            guard (1...Self.maximumTTL).contains(ttl) else {
                throw ValidationError("--ttl \(ttl): expected seconds > 0 and at most \(Self.maximumTTL) (a year), the exporter's REDIS_TTL_SECONDS")
            }
            if user != nil && passwordEnv == nil { throw ValidationError("--user \(user ?? "") needs --password-env VAR") }
            guard !prefix.isEmpty else { throw ValidationError("--prefix must not be empty") }
        }

        public func run() async throws {
            let endpoint: RedisEndpoint
            switch RedisEndpoint.parse(addr) {
            case .success(let parsed): endpoint = parsed
            case .failure(let error): throw KVerifyError(.usageOrInput, "--addr \(error)")
            }
            let credentials = try credentials()
            let options = RedisAuditOptions(prefix: prefix, ttlSeconds: ttl)
            var report = Report(target: "redis \(endpoint) db \(db) prefix \(options.prefix)")
            do {
                let connection = try await report.timed("connect") {
                    try RedisConnection.connect(RedisConnection.Configuration(
                        endpoint: endpoint, credentials: credentials, database: db,
                        connectTimeout: timeout.duration, operationTimeout: timeout.duration))
                }
                let auditor = RedisAuditor(connection: connection, options: options)
                let result = try await report.timed("audit") { try await auditor.audit() }
                report.findings += result.findings
                if expectExpiry {
                    let wait = expiryTimeout?.duration ?? .seconds(ttl * 2 + 10)
                    let timeline = try await report.timed("expiry") {
                        try await auditor.observeExpiry(deadline: .now + wait)
                    }
                    report.findings += timeline.findings(prefix: options.prefix)
                }
                connection.close()
            } catch let error as RedisError {
                // JSON and JUnit consumers read only stdout: they get the failure as a finding (text keeps the
                // one-line error on stderr).
                if output.output != .text {
                    report.findings.append(.fail("redis.reachable", subject: "redis \(endpoint) db \(db)",
                                                 expected: "a Redis server that answers (connect, AUTH, SELECT, SCAN)",
                                                 observed: error.description))
                    output.print(report)
                }
                throw KVerifyError(.unreachable, error.description)
            }
            try output.finish(report)
        }

        /// The password from `--password-env`, never from an argument.
        private func credentials() throws -> RedisCredentials? {
            guard let variable = passwordEnv else { return nil }
            guard let password = ProcessInfo.processInfo.environment[variable] else {
                throw KVerifyError(.usageOrInput, "--password-env \(variable): environment variable \(variable) is not set")
            }
            guard !password.isEmpty else {
                throw KVerifyError(.usageOrInput, "--password-env \(variable): environment variable \(variable) is empty")
            }
            return RedisCredentials(username: user, password: password)
        }
    }
}
