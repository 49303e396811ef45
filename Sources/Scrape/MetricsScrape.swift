import Findings
import Foundation

#if canImport(Glibc)
import Glibc
#endif
import HTTP
import MetricRules
import PromText
import Synchronization

/// Where an exposition comes from.
public enum ExpositionSource: Sendable, CustomStringConvertible {
    case url(String)
    case file(String)
    case standardInput

    public var description: String {
        switch self {
        case .url(let url): url
        case .file(let path): path
        case .standardInput: "standard input"
        }
    }
}

/// `--format`: a fixed format, or `auto` (Content-Type for URLs, `# EOF` sniffing for files).
public enum FormatChoice: String, Sendable, CaseIterable {
    case auto, text, openmetrics

    var fixed: ExpositionFormat? {
        switch self {
        case .auto: nil
        case .text: .text
        case .openmetrics: .openMetrics
        }
    }
}

/// One scrape-and-judge run: fetch (bounded), parse (streaming), evaluate rules, and say what happened as a report.
/// Failures that stop the run early still produce a report with one failing finding, plus the exit status the
/// failure maps to, so JSON and JUnit consumers see them too.
public struct MetricsScrape: Sendable {
    public var source: ExpositionSource
    public var format: FormatChoice
    public var ruleSets: [RuleSet]
    public var maxBytes: Int
    public var timeout: Duration

    /// What to ask a server for. `auto` prefers text 0.0.4: it is what every exporter serves, and kverify reads it
    /// leniently, reporting spec oddities as warnings (the gunicorn exporter's OpenMetrics output repeats family
    /// metadata, which strict OpenMetrics must reject). `--format openmetrics` demands strict OpenMetrics.
    public var acceptHeader: String {
        switch format {
        // prometheus_client answers OpenMetrics whenever the header names it, whatever its q, so auto leaves it out.
        case .auto: "text/plain;version=0.0.4,*/*;q=0.1"
        case .text: "text/plain;version=0.0.4"
        case .openmetrics: "application/openmetrics-text;version=1.0.0"
        }
    }

    public init(source: ExpositionSource, format: FormatChoice = .auto, ruleSets: [RuleSet] = [],
                maxBytes: Int = 64 << 20, timeout: Duration = .seconds(10)) {
        self.source = source
        self.format = format
        self.ruleSets = ruleSets
        self.maxBytes = maxBytes
        self.timeout = timeout
    }

    /// The outcome: the report and the exit status it implies (0, 1, 2 for unparseable input, 3 for unreachable).
    public struct Outcome: Sendable {
        public var report: Report
        public var exitStatus: ExitStatus
        public var exposition: Exposition?
    }

    public func run(client: HTTPClient? = nil) async -> Outcome {
        var report = Report(target: "metrics \(source)")
        do {
            let exposition = try await report.timed("scrape+parse") { try await fetchAndParse(client: client) }
            let evaluation = await report.timed("validate") { await Self.evaluate(exposition, ruleSets: ruleSets, within: timeout) }
            guard let findings = evaluation.findings else {
                report.findings = [.fail("rules.timeout", subject: evaluation.rule.map { "rule \($0)" } ?? "rules",
                    expected: "the rules evaluated within --timeout (\(timeout))",
                    observed: "still evaluating \(evaluation.rule.map { "rule \($0)" } ?? "the rules") after \(timeout)",
                    detail: "a `matches:` regex that backtracks, such as nested quantifiers ((a+)+), can take exponential time on a "
                        + "label value; Prometheus's RE2 never backtracks, Swift's Regex does: rewrite it without nesting quantifiers")]
                return Outcome(report: report, exitStatus: .usageOrInput, exposition: exposition)
            }
            report.findings = findings
            return Outcome(report: report, exitStatus: report.exitStatus, exposition: exposition)
        } catch let failure as ScrapeFailure {
            report.findings = [failure.finding]
            return Outcome(report: report, exitStatus: failure.status, exposition: nil)
        } catch {
            report.findings = [.fail("scrape.reachable", subject: source.description, observed: "\(error)")]
            return Outcome(report: report, exitStatus: .unreachable, exposition: nil)
        }
    }

    /// Evaluates the rules on a thread of its own, waiting at most `limit`: Swift's Regex backtracks and does not
    /// look at task cancellation, so a rule's regex can run for hours and only giving up on it bounds the command.
    /// Nil findings when the limit passed, with the id of the rule then running; that thread is abandoned and ends
    /// with the process (the CLI exits right after).
    static func evaluate(_ exposition: Exposition, ruleSets: [RuleSet], within limit: Duration) async -> (findings: [Finding]?, rule: String?) {
        let state = EvaluationState()
        let findings: [Finding]? = await withCheckedContinuation { continuation in
            let settle = { @Sendable (result: [Finding]?) in
                if state.settled.withLock({ done in defer { done = true }; return !done }) { continuation.resume(returning: result) }
            }
            Thread {
                settle(RuleEngine().evaluate(exposition, ruleSets: ruleSets) { id in state.rule.withLock { $0 = id } })
            }.start()
            DispatchQueue.global().asyncAfter(deadline: .now() + limit.seconds) { settle(nil) }
        }
        return (findings, findings == nil ? state.rule.withLock { $0 } : nil)
    }

    /// What the evaluation thread and the timer share: the rule running, and whether the answer was given.
    private final class EvaluationState: Sendable {
        let rule = Mutex<String?>(nil)
        let settled = Mutex(false)
    }

    /// Parses `bytes` already in memory (e.g. fetched through the Kubernetes API proxy) and evaluates the rules.
    public static func evaluate(_ bytes: [UInt8], format: ExpositionFormat, ruleSets: [RuleSet]) throws -> (Exposition, [Finding]) {
        let exposition = try ExpositionParser.parse(bytes, format: format)
        return (exposition, RuleEngine().evaluate(exposition, ruleSets: ruleSets))
    }

    private func fetchAndParse(client: HTTPClient?) async throws -> Exposition {
        let deadline = ContinuousClock.now + timeout
        switch source {
        case .url(let url):
            return try await fetch(url, client: client ?? HTTPClient(), deadline: deadline)
        case .file(let path):
            // O_NONBLOCK: opening a FIFO blocks until a writer opens it, past any deadline. Reads then wait in poll(2),
            // which (on Linux) does not report a FIFO's hang-up before its first writer came, so --timeout holds.
            let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw ScrapeFailure(.usageOrInput, .fail("input.readable", subject: path, expected: "a readable file",
                                                         observed: "cannot open it: \(String(cString: strerror(errno)))"))
            }
            let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            return try parse(from: handle, deadline: deadline)
        case .standardInput:
            return try parse(from: FileHandle.standardInput, deadline: deadline)
        }
    }

    private func fetch(_ url: String, client: HTTPClient, deadline: ContinuousClock.Instant) async throws -> Exposition {
        let request = HTTPRequest(url: url, headers: [HTTPHeader("Accept", acceptHeader)], timeout: timeout,
                                  connectTimeout: timeout, maxResponseBytes: maxBytes)
        let response: HTTPStreamingResponse
        do {
            response = try await client.stream(request)
        } catch let error as HTTPError {
            throw ScrapeFailure(for: error, url: url, maxBytes: maxBytes)
        }
        guard response.status == 200 else {
            throw ScrapeFailure(.unreachable, .fail("scrape.http-status", subject: url, expected: "HTTP 200",
                                                    observed: "HTTP \(response.status)"))
        }
        let contentType = response.header("Content-Type") ?? ""
        let format: ExpositionFormat
        if let fixed = self.format.fixed {
            format = fixed
        } else if let detected = FormatDetection.format(forContentType: contentType) {
            format = detected
        } else {
            throw ScrapeFailure(.usageOrInput, .fail(
                "scrape.content-type", subject: url,
                expected: "text/plain (Prometheus text 0.0.4) or application/openmetrics-text",
                observed: contentType.isEmpty ? "no Content-Type" : "Content-Type \(contentType)",
                detail: "pass --format text or --format openmetrics to parse it anyway"))
        }
        var parser = ExpositionParser(format: format)
        var received = 0
        do {
            // libcurl stops reading at --timeout, but what it read faster than the parser can go is queued: an endless
            // body from a fast server kept the parse going 14 s past a 1 s --timeout (third adversarial pass of #18).
            for try await chunk in response.body {
                guard ContinuousClock.now < deadline else {
                    throw ScrapeFailure(.unreachable, .fail("scrape.reachable", subject: url, expected: "the whole exposition within --timeout (\(timeout))",
                                                            observed: "\(received) bytes parsed, and the body had not ended",
                                                            detail: "does the server end its response? Raise --timeout if it is just large"))
                }
                received += chunk.count
                try consume(&parser, chunk, format: format)
            }
        } catch let error as HTTPError {
            throw ScrapeFailure(for: error, url: url, maxBytes: maxBytes)
        }
        return try finish(&parser, format: format)
    }

    /// Reads a file or stdin in chunks; `auto` needs the end (`# EOF` sniffing), so it buffers up to `maxBytes`.
    private func parse(from handle: FileHandle, deadline: ContinuousClock.Instant) throws -> Exposition {
        if let fixed = format.fixed {
            var parser = ExpositionParser(format: fixed)
            try readChunks(handle, deadline: deadline) { try consume(&parser, $0, format: fixed) }
            return try finish(&parser, format: fixed)
        }
        var buffered: [UInt8] = []
        try readChunks(handle, deadline: deadline) { buffered += $0 }
        let detected = FormatDetection.sniff(buffered)
        var parser = ExpositionParser(format: detected)
        try consume(&parser, buffered, format: detected)
        return try finish(&parser, format: detected)
    }

    /// read(2) behind poll(2) rather than FileHandle: FileHandle traps on a read error (a directory gives EISDIR),
    /// and a pipe whose writer stalls would block past `--timeout`.
    private func readChunks(_ handle: FileHandle, deadline: ContinuousClock.Instant, _ body: ([UInt8]) throws -> Void) throws {
        let fd = handle.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        // A regular file always reads to its end; the deadline is for pipes, FIFOs and terminals that can stall.
        var info = stat()
        let regularFile = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        while true {
            let remaining = regularFile ? .seconds(1) : deadline - .now
            guard remaining > .zero else {
                throw ScrapeFailure(.unreachable, .fail(
                    "input.readable", subject: source.description, expected: "the end of the input within --timeout (\(timeout))",
                    observed: "\(total) bytes, then nothing more before the deadline",
                    detail: "is whatever writes to it stuck? Raise --timeout if it is just slow"))
            }
            let (seconds, attoseconds) = remaining.components
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1))
            if ready == 0 || (ready < 0 && errno == EINTR) { continue }
            let count = ready < 0 ? -1 : buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw ScrapeFailure(.usageOrInput, .fail("input.readable", subject: source.description,
                                                         expected: "a readable file or stream of metrics",
                                                         observed: "cannot read it: \(String(cString: strerror(errno)))",
                                                         detail: "pass a regular file, or '-' with the exposition on standard input"))
            }
            if count == 0 { return }
            total += count
            guard total <= maxBytes else {
                throw ScrapeFailure(.usageOrInput, .fail("input.size", subject: source.description,
                                                         expected: "at most \(maxBytes) bytes (--max-bytes)",
                                                         observed: "more than \(maxBytes) bytes"))
            }
            try body(Array(buffer[..<count]))
        }
    }

    private func consume(_ parser: inout ExpositionParser, _ chunk: [UInt8], format: ExpositionFormat) throws {
        do {
            try parser.consume(chunk)
        } catch {
            throw ScrapeFailure(parseError: error, source: source.description, format: format)
        }
    }

    private func finish(_ parser: inout ExpositionParser, format: ExpositionFormat) throws -> Exposition {
        do {
            return try parser.finish()
        } catch {
            throw ScrapeFailure(parseError: error, source: source.description, format: format)
        }
    }
}

/// A failure that ends a scrape early, as the finding to report and the exit status it maps to.
struct ScrapeFailure: Error {
    var status: ExitStatus
    var finding: Finding

    init(_ status: ExitStatus, _ finding: Finding) {
        self.status = status
        self.finding = finding
    }

    init(parseError: ParseError, source: String, format: ExpositionFormat) {
        self.init(.usageOrInput, .fail(GenericCheck.parsed, subject: "\(source):\(parseError.line):\(parseError.column)",
                                       expected: "valid \(format == .text ? "Prometheus text 0.0.4" : "OpenMetrics 1.0")",
                                       observed: parseError.reason))
    }

    init(for error: HTTPError, url: String, maxBytes: Int) {
        switch error.kind {
        case .tooLarge:
            self.init(.usageOrInput, .fail("input.size", subject: url, expected: "at most \(maxBytes) bytes (--max-bytes)",
                                           observed: error.reason))
        case .connectionFailed:
            self.init(.unreachable, .fail(
                "scrape.reachable", subject: url, expected: "a metrics endpoint accepting connections", observed: error.reason,
                detail: "is the exporter running? With REDIS_ENABLED and no PROMETHEUS_MULTIPROC_DIR its when_ready hook "
                    + "must be redis_when_ready, else it logs 'skipping metrics server' and nothing listens"))
        case .timedOut:
            self.init(.unreachable, .fail("scrape.reachable", subject: url, expected: "an answer within --timeout",
                                          observed: error.reason))
        default:
            self.init(.unreachable, .fail("scrape.reachable", subject: url, expected: "a complete HTTP response",
                                          observed: "\(error.kind.rawValue): \(error.reason)"))
        }
    }
}
