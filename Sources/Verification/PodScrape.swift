import Findings
import Foundation
import KubeClient
import MetricRules
import PromText
import Scrape

/// Scrapes every pod's exporter port through the API server proxy, all pods at once, and judges each
/// exposition with the rule sets (by default the gunicorn profile). Findings carry `node/… pod/…` subjects;
/// `perNode` folds them into one verdict per node, so a node whose pod breaks a rule fails the run by name.
public struct PodScrape: Sendable {
    public var namespace: String
    /// Override every target's discovered metrics port and path (nil: each target's own, `PodTarget.endpoints`).
    public var port: Int?
    public var path: String?
    public var ruleSets: [RuleSet]

    public init(namespace: String, port: Int? = nil, path: String? = nil, ruleSets: [RuleSet] = [Profiles.gunicorn]) {
        self.namespace = namespace
        self.port = port
        self.path = path
        self.ruleSets = ruleSets
    }

    /// Seen on the sim with a 5 s TTL: the exporter refreshes the TTL only of keys it writes, and a request
    /// increments one bucket, so buckets no request reached (+Inf first) expire TTL seconds after the worker started.
    static let expiredBucketHint = "the exporter stores each histogram bucket as its own Redis key and refreshes only the keys "
        + "a request writes: buckets no request reached expire REDIS_TTL_SECONDS after the worker started. "
        + "A TTL shorter than the scrape interval or the workers' age shows this; raise REDIS_TTL_SECONDS"

    /// What a pod's scrape leaves: its findings and counts, not the parsed model. A phase over 500 pods that kept
    /// every pod's model until the last scrape ended held all of them at once (`pattern_scale.sh`: resident memory
    /// rose by a fifth during the scrape phase at 200 nodes).
    public struct PodMetrics: Sendable {
        public var target: PodTarget
        /// Samples parsed; 0 when the scrape or the parse failed (see `findings`).
        public var samples: Int
        public var bytes: Int
        public var findings: [Finding]
    }

    /// Fetches and judges one pod's metrics. The exporter updates a histogram's buckets as separate Redis writes,
    /// and kubelet probes are requests too, so a scrape can catch a histogram mid-update (seen on the sim: no +Inf
    /// bucket, 6 s into a run with a 30 s TTL). An inconsistent histogram is therefore scraped again, twice at
    /// most; one that heals is a warning naming what was seen, one that persists (expired buckets) stays a failure.
    /// - Parameter first: an answer already fetched from the pod's metrics endpoint (`MetricWait`'s last scrape), judged
    ///   in place of the first fetch when every rule holds on it; one with a failure is fetched again, so a verdict
    ///   never rests on the earliest answer alone.
    public func scrape(_ target: PodTarget, api: any KubeAPI, first: [UInt8]? = nil) async -> PodMetrics {
        var result: PodMetrics
        if let first, case let judged = judge(first, of: target), !judged.findings.contains(where: { $0.status == .fail }) {
            result = judged
        } else {
            result = await scrapeOnce(target, api: api)
        }
        var transient: [Finding] = []
        for _ in 0..<2 where result.findings.contains(where: { $0.checkID == Self.histogramCheck && $0.status == .fail }) {
            transient = result.findings.filter { $0.checkID == Self.histogramCheck && $0.status == .fail }
            // Cancelled (Ctrl-C): keep what the last scrape saw rather than scraping again.
            guard (try? await Task.sleep(for: .milliseconds(300))) != nil else { break }
            result = await scrapeOnce(target, api: api)
        }
        if !transient.isEmpty, !result.findings.contains(where: { $0.checkID == Self.histogramCheck && $0.status == .fail }) {
            result.findings.append(.warn(Self.histogramCheck, subject: target.subject, expected: "consistent histograms on every scrape",
                                         observed: "inconsistent on one scrape, consistent on the next: \(transient[0].observed ?? "")",
                                         detail: "the exporter writes a histogram's buckets one Redis key at a time; a scrape during a request can see part of it"))
        }
        return result
    }

    static let histogramCheck = GenericCheck.histogramConsistent

    private func scrapeOnce(_ target: PodTarget, api: any KubeAPI) async -> PodMetrics {
        let bytes: [UInt8]
        let (metricsPort, metricsPath) = (port ?? target.endpoints.metrics.port, path ?? target.endpoints.metrics.path)
        do {
            bytes = try await api.proxyGet(pod: target.pod, port: metricsPort, path: metricsPath, namespace: namespace)
        } catch {
            return PodMetrics(target: target, samples: 0, bytes: 0, findings: [.fail(
                "scrape.reachable", subject: target.subject, expected: "metrics on :\(metricsPort)\(metricsPath) through the API proxy",
                observed: "\(error)",
                detail: "is the exporter listening? A metrics server skipped at start-up ('skipping metrics server') looks like this")])
        }
        return judge(bytes, of: target)
    }

    /// Parses one answer of the pod's metrics endpoint and runs the rule sets on it.
    private func judge(_ bytes: [UInt8], of target: PodTarget) -> PodMetrics {
        do {
            let (exposition, findings) = try MetricsScrape.evaluate(bytes, format: FormatDetection.sniff(bytes), ruleSets: ruleSets)
            let scoped = findings.map { finding in
                var scoped = target.scope(finding)
                if finding.status == .fail, finding.expected == GenericCheck.infBucketExpectation, finding.detail == nil {
                    scoped.detail = Self.expiredBucketHint
                }
                return scoped
            }
            return PodMetrics(target: target, samples: exposition.sampleCount, bytes: bytes.count, findings: scoped)
        } catch let error as ParseError {
            return PodMetrics(target: target, samples: 0, bytes: bytes.count, findings: [.fail(
                GenericCheck.parsed, subject: "\(target.subject) :\(error.line):\(error.column)", expected: "a valid exposition",
                observed: error.reason)])
        } catch {
            return PodMetrics(target: target, samples: 0, bytes: bytes.count, findings: [.fail(
                GenericCheck.parsed, subject: target.subject, expected: "a valid exposition", observed: "\(error)")])
        }
    }

    /// Every pod, `concurrency` at a time (as the traffic phase: over HTTP/2 they share one connection), so that
    /// only that many answers are held at once.
    public func run(_ targets: [PodTarget], api: any KubeAPI, concurrency: Int = 64) async -> [PodMetrics] {
        let results = await boundedMap(targets.count, concurrency: concurrency) { index in
            await scrape(targets[index], api: api)
        }
        return results.sorted { $0.target.pod < $1.target.pod }
    }

    /// One `node.metrics` finding per node: pass when every rule held on its pod(s), else fail naming the rules.
    public static func perNode(_ results: [PodMetrics]) -> [Finding] {
        Dictionary(grouping: results, by: \.target.node).sorted { $0.key < $1.key }.map { node, results in
            let failed = results.flatMap(\.findings).filter { $0.status == .fail }
            let pods = results.map(\.target.pod).joined(separator: ", ")
            let series = results.reduce(0) { $0 + $1.samples }
            if failed.isEmpty {
                return .pass("node.metrics", subject: "node/\(node)", expected: "every metric rule holds on its pods",
                             observed: "pod \(pods): \(series) samples, all rules held")
            }
            let checks = Array(Set(failed.map(\.checkID))).sorted()
            return .fail("node.metrics", subject: "node/\(node)", expected: "every metric rule holds on its pods",
                         observed: "pod \(pods): \(failed.count) failed checks (\(checks.joined(separator: ", ")))")
        }
    }
}
