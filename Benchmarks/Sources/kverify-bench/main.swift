// kverify-bench: the client side of scripts/bench/kube_proxy.sh. Issues proxy GETs to distinct pods through one
// KubeAPI backend — the REST backend (libcurl, one connection pool) or the kubectl backend (one `kubectl get --raw`
// process per request) — and prints wall time and per-request latency as one JSON line. Not part of kverify's
// interface: a measuring tool, so it parses its few flags by hand.
import Foundation
import KubeClient
import KubeConfig
import KubeModel

struct Options {
    var kubeconfig = ""
    var namespace = "default"
    var selector = ""
    var port = 9091
    var path = "metrics"
    var requests = 1000
    var concurrency = 1
    var backend = "rest"
    /// Every body must contain this, so a fast error page never counts as a fast answer.
    var expect = "# TYPE"

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var rest = arguments[...]
        func value(_ flag: String) -> String {
            guard let next = rest.popFirst() else { fail("\(flag) needs a value") }
            return next
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--kubeconfig": options.kubeconfig = value(flag)
            case "--namespace": options.namespace = value(flag)
            case "--selector": options.selector = value(flag)
            case "--port": options.port = Int(value(flag)) ?? options.port
            case "--path": options.path = value(flag)
            case "--requests": options.requests = Int(value(flag)) ?? options.requests
            case "--concurrency": options.concurrency = max(1, Int(value(flag)) ?? 1)
            case "--backend": options.backend = value(flag)
            case "--expect": options.expect = value(flag)
            default: fail("unknown flag \(flag)")
            }
        }
        if options.kubeconfig.isEmpty { fail("--kubeconfig is required") }
        return options
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("kverify-bench: \(message)\n".utf8))
    exit(2)
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// The value below which `fraction` of the sorted samples lie (nearest rank).
func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let configuration: KubeConfiguration
do {
    configuration = try KubeConfigLoader(environment: ProcessInfo.processInfo.environment, homeDirectory: NSHomeDirectory())
        .load(.init(kubeconfig: options.kubeconfig))
} catch {
    fail("kubeconfig \(options.kubeconfig): \(error)")
}
let rest = RESTBackend(configuration: configuration, requestTimeout: .seconds(60))
let api: any KubeAPI = switch options.backend {
case "rest": rest
case "kubectl": KubectlBackend(configuration: configuration, timeout: .seconds(60))
default: fail("--backend must be rest or kubectl")
}

// Ready pods, by name; requests go to them in order, each pod once while there are enough of them.
let pods = try await rest.list(Pod.self, namespace: options.namespace, options: ListOptions(labelSelector: options.selector))
    .filter(\.isReady).compactMap(\.metadata.name).sorted()
guard pods.count > 1 else { fail("fewer than 2 Ready pods in \(options.namespace) match '\(options.selector)'") }
// One warm-up request outside the measurement (the REST backend's first TLS handshake; kubectl's first start).
_ = try await api.proxyGet(pod: pods[pods.count - 1], port: options.port, path: options.path, namespace: options.namespace)
let targets = (0..<options.requests).map { pods[$0 % pods.count] }

struct Sample: Sendable {
    var latency: Duration
    var bytes: Int
    var error: String?
}

let clock = ContinuousClock()
let started = clock.now
let samples: [Sample] = await withTaskGroup(of: [Sample].self) { group in
    let next = Counter()
    for _ in 0..<options.concurrency {
        group.addTask {
            var mine: [Sample] = []
            while let index = next.take(below: targets.count) {
                let begin = clock.now
                do {
                    let body = try await api.proxyGet(pod: targets[index], port: options.port, path: options.path, namespace: options.namespace)
                    let ok = String(decoding: body, as: UTF8.self).contains(options.expect)
                    mine.append(Sample(latency: clock.now - begin, bytes: body.count, error: ok ? nil : "body without \(options.expect)"))
                } catch {
                    mine.append(Sample(latency: clock.now - begin, bytes: 0, error: "\(error)"))
                }
            }
            return mine
        }
    }
    var all: [Sample] = []
    for await part in group { all += part }
    return all
}
let wall = clock.now - started
rest.shutdown()

let latencies = samples.map { milliseconds($0.latency) }.sorted()
let failures = samples.compactMap(\.error)
let report: [String: Any] = [
    "backend": options.backend, "requests": samples.count, "distinct_pods": Set(targets).count, "concurrency": options.concurrency,
    "wall_s": (milliseconds(wall) / 1000 * 1000).rounded() / 1000,
    "median_ms": (percentile(latencies, 0.5) * 100).rounded() / 100, "p95_ms": (percentile(latencies, 0.95) * 100).rounded() / 100,
    "max_ms": ((latencies.last ?? 0) * 100).rounded() / 100,
    "bytes": samples.map(\.bytes).reduce(0, +), "failures": failures.count, "first_failure": failures.first ?? "",
]
let line = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
print(String(decoding: line, as: UTF8.self))
exit(failures.isEmpty ? 0 : 1)

/// Hands out request indices to the workers.
final class Counter: @unchecked Sendable {  // `next` is only touched under `lock`
    private let lock = NSLock()
    private var next = 0
    func take(below limit: Int) -> Int? {
        lock.withLock {
            guard next < limit else { return nil }
            defer { next += 1 }
            return next
        }
    }
}
