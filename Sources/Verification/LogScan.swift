import Findings
import KubeClient
import KubeModel

/// Reads every container's log of the run's app pods and reports the exporter's known failure messages —
/// failures the exporter itself only logs (the metrics server silently skipped is the classic one).
public struct LogScan: Sendable {
    public struct Signature: Sendable, Hashable {
        public var checkID: String
        public var needle: String
        public var status: Finding.Status
        public var meaning: String
    }

    /// What the Gunicorn Prometheus Exporter (0.2.4, `hooks.py`) logs when something is wrong. The sidecar
    /// hook's own INFO line "Sidecar mode: skipping metrics server setup in app container" is expected, so the
    /// needle is the WARNING's exact wording.
    public static let exporterSignatures: [Signature] = [
        Signature(checkID: "exporter.metrics-server-skipped", needle: "PROMETHEUS_MULTIPROC_DIR not set; skipping metrics server", status: .fail,
                  meaning: "the exporter started without serving /metrics (default_when_ready with REDIS_ENABLED and no "
                    + "PROMETHEUS_MULTIPROC_DIR); use redis_when_ready or redis_sidecar_when_ready"),
        Signature(checkID: "exporter.metrics-server-failed", needle: "Failed to start metrics server", status: .fail,
                  meaning: "the exporter could not bind its metrics port"),
        Signature(checkID: "exporter.redis", needle: "Failed to setup Redis storage", status: .fail,
                  meaning: "the workers could not reach Redis; metrics are not stored"),
        Signature(checkID: "exporter.redis", needle: "Failed to initialize Redis collector", status: .fail,
                  meaning: "the metrics server cannot read Redis"),
        Signature(checkID: "exporter.python-exception", needle: "Traceback (most recent call last)", status: .warn,
                  meaning: "a Python exception was logged"),
        Signature(checkID: "exporter.worker-timeout", needle: "WORKER TIMEOUT", status: .warn,
                  meaning: "gunicorn killed a worker that did not answer within its timeout"),
    ]

    public var namespace: String
    public var tailLines: Int
    public var signatures: [Signature]

    public init(namespace: String, tailLines: Int = 500, signatures: [Signature] = LogScan.exporterSignatures) {
        self.namespace = namespace
        self.tailLines = tailLines
        self.signatures = signatures
    }

    /// Pure: the findings for one container's log text.
    public func findings(log: String, subject: String) -> [Finding] {
        let lines = log.split(separator: "\n").map(String.init)
        var findings: [Finding] = []
        for signature in signatures {
            let hits = lines.filter { $0.contains(signature.needle) }
            guard let first = hits.first else { continue }
            findings.append(Finding(checkID: signature.checkID, subject: subject, status: signature.status,
                                    expected: "no \"\(signature.needle)\" in the log",
                                    observed: "\(hits.count) line(s), first: \(first.prefix(200))", detail: signature.meaning))
        }
        return findings
    }

    /// Every container of every target pod, `concurrency` pods at a time, findings in the targets' order; a pass
    /// finding per pod when its logs are clean. One pod at a time made this phase 0.9–4 s of a 200–500-pod run.
    public func run(_ targets: [PodTarget], pods: [Pod], api: any KubeAPI, concurrency: Int = 16) async -> [Finding] {
        let podsByName = Dictionary(pods.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let work = targets.compactMap { target in podsByName[target.pod].map { (target, $0) } }
        return await boundedMap(work.count, concurrency: concurrency) { index in
            await scan(work[index].0, work[index].1, api: api)
        }.flatMap { $0 }
    }

    private func scan(_ target: PodTarget, _ pod: Pod, api: any KubeAPI) async -> [Finding] {
        let containers = (pod.spec?.initContainers ?? []).map(\.name) + (pod.spec?.containers ?? []).map(\.name)
        var podFindings: [Finding] = []
        var read: [String] = []
        for container in containers {
            do {
                let log = try await api.logs(pod: target.pod, namespace: namespace, container: container, tailLines: tailLines)
                podFindings += self.findings(log: log, subject: "\(target.subject) container/\(container)")
                read.append(container)
            } catch {
                podFindings.append(.warn("logs.readable", subject: "\(target.subject) container/\(container)",
                                         expected: "the container's log", observed: "\(error)"))
            }
        }
        if podFindings.isEmpty {
            podFindings.append(.pass("logs.clean", subject: target.subject, expected: "no known exporter failure messages",
                                     observed: "none in \(read.joined(separator: ", "))"))
        }
        return podFindings
    }
}
