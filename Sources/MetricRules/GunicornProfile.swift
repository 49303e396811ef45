import Findings
import Foundation
import PromText

/// Built-in rule profiles, selected with `--profile NAME`.
public enum Profiles {
    public static let all: [String: RuleSet] = ["gunicorn": gunicorn]

    /// The Gunicorn Prometheus Exporter (PyPI `gunicorn-prometheus-exporter` 0.2.4). Covers everything the upstream
    /// `validate_metrics.sh` greps for, per series and per worker, plus what grep cannot see.
    public static let gunicorn: RuleSet = {
        let noTraffic =
            "the exporter writes worker series only when a worker handles a request, and they expire with their Redis "
            + "TTL after idleness: send traffic, then scrape within REDIS_TTL_SECONDS"
        let workerGauges = [
            "gunicorn_worker_memory_bytes", "gunicorn_worker_cpu_percent", "gunicorn_worker_uptime_seconds", "gunicorn_worker_state",
        ]
        var rules: [MetricRule] = [
            MetricRule(id: "gunicorn.requests.present", metric: "gunicorn_worker_requests_total", check: .present, hint: noTraffic),
            MetricRule(id: "gunicorn.requests.type", metric: "gunicorn_worker_requests_total", check: .type([.counter])),
            MetricRule(id: "gunicorn.requests.counted", metric: "gunicorn_worker_requests_total",
                       check: .value(.compare(.greater, 0), aggregate: .sum), hint: noTraffic),
            MetricRule(id: "gunicorn.duration.type", metric: "gunicorn_worker_request_duration_seconds", check: .type([.histogram])),
            MetricRule(id: "gunicorn.duration.buckets", metric: "gunicorn_worker_request_duration_seconds",
                       check: .seriesCount(atLeast: 1), sampleSuffix: "_bucket", hint: noTraffic),
            MetricRule(id: "gunicorn.duration.count", metric: "gunicorn_worker_request_duration_seconds",
                       check: .seriesCount(atLeast: 1), sampleSuffix: "_count", hint: noTraffic),
            MetricRule(id: "gunicorn.duration.sum", metric: "gunicorn_worker_request_duration_seconds",
                       check: .value(.finite, aggregate: .each), sampleSuffix: "_sum", hint: noTraffic),
            MetricRule(id: "gunicorn.duration.consistent", metric: "gunicorn_worker_request_duration_seconds", check: .histogramConsistent),
            MetricRule(id: "gunicorn.memory.positive", metric: "gunicorn_worker_memory_bytes", check: .value(.compare(.greater, 0), aggregate: .each),
                       hint: "a live worker uses memory; 0 means the exporter could not read the process"),
            MetricRule(id: "gunicorn.cpu.finite", metric: "gunicorn_worker_cpu_percent", check: .value(.finite, aggregate: .each)),
            MetricRule(id: "gunicorn.cpu.non-negative", metric: "gunicorn_worker_cpu_percent",
                       check: .value(.compare(.greaterOrEqual, 0), aggregate: .each)),
            MetricRule(id: "gunicorn.uptime.positive", metric: "gunicorn_worker_uptime_seconds",
                       check: .value(.compare(.greater, 0), aggregate: .each)),
            MetricRule(id: "gunicorn.state.valid", metric: "gunicorn_worker_state",
                       check: .label("state", matches: try? .init("running|quitting|aborting")),
                       hint: "the exporter reports running, quitting or aborting"),
            MetricRule(id: "gunicorn.state.value", metric: "gunicorn_worker_state", check: .value(.finite, aggregate: .each)),
            MetricRule(id: "gunicorn.worker-series.count", metric: "gunicorn_worker_requests_total",
                       check: .seriesCount(atLeast: 1), hint: noTraffic),
        ]
        for gauge in workerGauges {
            rules.append(MetricRule(id: "gunicorn.\(short(gauge)).present", metric: gauge, check: .present, hint: noTraffic))
            rules.append(MetricRule(id: "gunicorn.\(short(gauge)).type", metric: gauge, check: .type([.gauge])))
        }
        for family in ["gunicorn_worker_requests_total", "gunicorn_worker_request_duration_seconds"] + workerGauges {
            rules.append(MetricRule(id: "gunicorn.worker-id", metric: family, check: .label("worker_id", matches: try? .init("worker_[0-9]+_[0-9]+")),
                                    hint: "every worker series must say which worker it came from (worker_{age}_{start_unix})"))
        }
        return RuleSet(
            name: "gunicorn", rules: rules + optionalRestartRules,
            knownOddities: [
                .duplicateMetadata: .init(
                    checkID: "gunicorn.exporter.duplicate-type-blocks",
                    hint: "known upstream quirk: the exporter prints HELP/TYPE twice for its families, from its registry and from "
                        + "its multiprocess collector (Redis or files; sidecar gauges also appear in two # TYPE blocks). Prometheus "
                        + "scrapes it; strict parsers reject it."),
            ])
    }()

    /// Restart counters are written only after a restart; when they are present they must be well-formed.
    static let optionalRestartRules: [MetricRule] = [
        ("gunicorn_worker_restart_total", "reason"),
        ("gunicorn_worker_restart_count_total", "restart_type"),
        ("gunicorn_master_worker_restart_total", "reason"),
        ("gunicorn_master_worker_restart_count_total", "reason"),
    ].flatMap { metric, label in
        [
            MetricRule(id: "gunicorn.restarts.type", metric: metric, check: .type([.counter]), severity: .warn, onlyIfPresent: true),
            MetricRule(id: "gunicorn.restarts.value", metric: metric, check: .value(.compare(.greaterOrEqual, 0), aggregate: .each), onlyIfPresent: true),
            MetricRule(id: "gunicorn.restarts.label", metric: metric, check: .label(label, matches: nil), onlyIfPresent: true),
        ]
    }

    private static func short(_ metric: String) -> String {
        metric.replacingOccurrences(of: "gunicorn_worker_", with: "").replacingOccurrences(of: "_", with: "-")
    }
}
