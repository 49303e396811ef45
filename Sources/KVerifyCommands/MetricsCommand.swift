import ArgumentParser
import Findings
import Foundation
import MetricRules
import Scrape

extension FormatChoice: ExpressibleByArgument {}

/// `kverify metrics`: parse one exposition and judge it with the generic consistency rules, a built-in profile
/// and/or a rules file.
struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Scrape or read a Prometheus/OpenMetrics exposition and validate it.",
        discussion: """
            Parses Prometheus text 0.0.4 or OpenMetrics 1.0 (--format auto picks by Content-Type for URLs and by a \
            final '# EOF' line for files) and reports findings. Without --profile or --rules only the generic \
            consistency rules run: histogram buckets cumulative with +Inf == _count and a finite _sum, counters \
            non-negative, summary quantiles in [0, 1], and warnings for duplicate series, interleaved families and \
            repeated # TYPE/# HELP (text mode accepts these, as Prometheus does).

            PROFILES
              gunicorn  the Gunicorn Prometheus Exporter: requests counted (sum > 0), request-duration histogram \
            with buckets/sum/count, memory > 0, cpu finite ≥ 0, uptime > 0, worker_state with a valid state, \
            worker_id on every worker series, types as documented, restart counters well-formed when present.

            RULES FILE (YAML)
              rules:
                - id: app.requests.counted
                  metric: http_requests_total
                  value: "> 0"          # or present: true | type: counter | label: NAME [matches: RE]
                  aggregate: sum        #    | min_series: N | histogram: consistent
                  severity: fail        # or warn

            \(ExitStatus.documentation)
            """
    )

    @Option(help: "Scrape this URL (http or https).")
    var url: String?

    @Option(help: "Read this file; '-' reads standard input.")
    var file: String?

    @Option(help: "Built-in rule profile: \(Profiles.all.keys.sorted().joined(separator: ", ")).")
    var profile: String?

    @Option(help: "YAML rules file (see RULES FILE below).")
    var rules: String?

    @Option(help: "Exposition format: auto, text or openmetrics.")
    var format: FormatChoice = .auto

    @Option(help: "Largest body or file accepted, in bytes.")
    var maxBytes: Int = 64 << 20

    @Option(help: "Deadline for the whole scrape or read, and again for evaluating the rules, e.g. 10s or 500ms (at most 168h).")
    var timeout: DurationArgument = DurationArgument(.seconds(10), text: "10s")

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        guard (url == nil) != (file == nil) else { throw ValidationError("give exactly one of --url or --file") }
        if let profile, Profiles.all[profile] == nil {
            throw ValidationError("unknown profile '\(profile)'; known: \(Profiles.all.keys.sorted().joined(separator: ", "))")
        }
        guard maxBytes > 0 else { throw ValidationError("--max-bytes must be positive") }
        // libcurl would try any scheme it knows (ftp, file, …) and fail as if the server were unreachable.
        if let url {
            let scheme = url.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
            guard url.contains("://"), scheme == "http" || scheme == "https" else {
                throw ValidationError("--url '\(Redaction.redact(url))': expected an http:// or https:// URL (a metrics endpoint); for a file use --file")
            }
            // A URL libcurl cannot parse ("http://[::1/metrics": an unclosed IPv6 bracket) is the user's typo, not an
            // unreachable server.
            if let port = Self.port(of: url), !(1...65535).contains(port) {
                throw ValidationError("--url '\(Redaction.redact(url))': port \(port) is not in 1…65535")
            }
            guard let host = URLComponents(string: url)?.host, !host.isEmpty else {
                throw ValidationError("--url '\(Redaction.redact(url))': not a URL whose host can be read; expected http(s)://HOST[:PORT]/PATH "
                                      + "(an IPv6 address in brackets: http://[::1]:9091/metrics)")
            }
        }
    }

    /// The port written in the URL's authority, read by hand: libcurl reports one past 65535 as a bad URL at
    /// transfer time, which looked like an unreachable server (exit 3).
    static func port(of url: String) -> Int? {
        guard let scheme = url.range(of: "://") else { return nil }
        var authority = url[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let portText: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]"), authority[close...].hasPrefix("]:") else { return nil }
            portText = authority[authority.index(close, offsetBy: 2)...]
        } else {
            guard let colon = authority.lastIndex(of: ":") else { return nil }
            portText = authority[authority.index(after: colon)...]
        }
        return Int(portText)
    }

    func run() async throws {
        var ruleSets: [RuleSet] = []
        if let profile, let set = Profiles.all[profile] { ruleSets.append(set) }
        if let rules { ruleSets.append(try RuleFile.load(path: rules)) }
        let source: ExpositionSource = if let url { .url(url) } else if file == "-" { .standardInput } else { .file(file!) }
        let scrape = MetricsScrape(source: source, format: format, ruleSets: ruleSets, maxBytes: maxBytes,
                                   timeout: timeout.duration)
        let outcome = await scrape.run()
        try outputOptions.finish(outcome.report, exitStatus: outcome.exitStatus)
    }
}
