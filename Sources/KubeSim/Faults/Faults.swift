import Foundation
import Synchronization
import SimStore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Faults the sim injects, from `sim up --faults FILE` or set by tests (`SimulatedCluster.faults`):
///
/// ```yaml
/// imagePullFailure: [{image: "kverify-demo-app:*"}]        # ErrImagePull → ImagePullBackOff
/// crashOnStart: [{container: app, exitCode: 1}]             # the container exits at once → CrashLoopBackOff
/// slowReadiness: [{container: prometheus-exporter, delaySeconds: 20}]   # probes fail for that long after start
/// nodeNotReady: [{node: kverify-sim-worker2, afterSeconds: 5}]           # node Ready=Unknown, its pods unready
/// api: {latencyMilliseconds: 50, errorRate: 0.1, errorCode: 429, retryAfterSeconds: 1}   # every request
/// api: {errors: [{code: 500, rate: 0.2}, {code: 503, rate: 0.05}, {code: 429, rate: 0.2}]}   # a mix of errors
/// watch: {dropAfterSeconds: 5, goneRate: 0.5}  # watches cut after 5 s; half of the resumed ones get 410 Gone
/// exec: {cutRate: 0.3}  # 30 % of exec sessions lose their connection after the command ran, before its output
///                       # and exit status reach the client (a client must not simply run it again)
/// network: {nodePortsUnreachable: true}  # no NodePort listens on the node addresses, as on Docker Desktop, where
///                                        # kind's node IPs are not routable from the host
/// ```
/// `image` and `container` are shell globs (default `*`); a fault applies to containers matching both.
public struct FaultPlan: Sendable, Equatable {
    public struct ContainerMatch: Sendable, Equatable {
        public var image: String = "*"
        public var container: String = "*"
        public var namespace: String = "*"

        public init(image: String = "*", container: String = "*", namespace: String = "*") {
            self.image = image
            self.container = container
            self.namespace = namespace
        }

        func matches(image: String, container: String, namespace: String) -> Bool {
            fnmatch(self.image, image, 0) == 0 && fnmatch(self.container, container, 0) == 0 && fnmatch(self.namespace, namespace, 0) == 0
        }
    }

    public struct Crash: Sendable, Equatable {
        public var match: ContainerMatch
        public var exitCode: Int
        public init(_ match: ContainerMatch, exitCode: Int = 1) {
            self.match = match
            self.exitCode = exitCode
        }
    }

    public struct SlowReadiness: Sendable, Equatable {
        public var match: ContainerMatch
        public var delay: Duration
        public init(_ match: ContainerMatch, delay: Duration) {
            self.match = match
            self.delay = delay
        }
    }

    public struct NodeNotReady: Sendable, Equatable {
        public var node: String
        public var after: Duration
        public init(node: String, after: Duration = .zero) {
            self.node = node
            self.after = after
        }
    }

    public var imagePullFailures: [ContainerMatch] = []
    public var crashOnStart: [Crash] = []
    public var slowReadiness: [SlowReadiness] = []
    public var nodeNotReady: [NodeNotReady] = []
    public var apiLatency: Duration = .zero
    /// Fraction (0…1) of API requests answered with `apiErrorCode` instead.
    public var apiErrorRate: Double = 0
    public var apiErrorCode: Int = 500
    public var retryAfterSeconds: Int = 1
    /// More error codes, each with its own share of requests (on top of `apiErrorRate` × `apiErrorCode`).
    public var apiErrorMix: [APIErrorShare] = []
    /// Watches are cut after this long (the client must reconnect).
    public var watchDropAfter: Duration?
    /// Fraction of watches resuming from a resourceVersion that get 410 Gone (the client must relist).
    public var watchGoneRate: Double = 0
    /// NodePort Services get no listener on the node addresses (cluster IPs still answer).
    public var nodePortsUnreachable = false
    /// Fraction (0…1) of exec sessions whose connection ends, with no close frame, after the command exited and
    /// before its output and Status were sent: the connection lost mid-stream that a retry must not repeat.
    public var execCutRate: Double = 0

    /// One error code and the share (0…1) of API requests answered with it.
    public struct APIErrorShare: Sendable, Equatable {
        public var code: Int
        public var rate: Double
        public init(code: Int, rate: Double) {
            self.code = code
            self.rate = rate
        }
    }

    public init() {}

    public var isEmpty: Bool { self == FaultPlan() }

    /// Why this plan does not fit a sim of these nodes (a `nodeNotReady` naming none of them); nil when it does.
    public func problem(forNodes names: [String]) -> String? {
        guard let unknown = nodeNotReady.first(where: { !names.contains($0.node) }) else { return nil }
        return "nodeNotReady names node \(unknown.node), which this sim does not have; its nodes: \(names.joined(separator: ", "))"
    }

    /// The error code to answer one request with, nil to serve it: the shares are disjoint slices of [0, 1).
    package func injectedError(roll: Double = Double.random(in: 0..<1)) -> Int? {
        var upper = 0.0
        for share in [APIErrorShare(code: apiErrorCode, rate: apiErrorRate)] + apiErrorMix {
            upper += share.rate
            if roll < upper { return share.code }
        }
        return nil
    }

    package func pullFails(image: String, container: String, namespace: String) -> Bool {
        imagePullFailures.contains { $0.matches(image: image, container: container, namespace: namespace) }
    }

    package func crash(image: String, container: String, namespace: String) -> Crash? {
        crashOnStart.first { $0.match.matches(image: image, container: container, namespace: namespace) }
    }

    package func readinessDelay(image: String, container: String, namespace: String) -> Duration? {
        slowReadiness.first { $0.match.matches(image: image, container: container, namespace: namespace) }?.delay
    }

    /// Reads a faults file (format above). - Throws: `SimError` naming the file and the field.
    public static func load(path: String) throws -> FaultPlan {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SimError("cannot read the faults file \(path): \(error.localizedDescription)")
        }
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw SimError("the faults file \(path) is not valid YAML: \(error)")
        }
        guard let root = (document ?? [String: Any]()) as? [String: Any] else {
            throw SimError("the faults file \(path) must be a mapping")
        }
        let known: Set<String> = ["imagePullFailure", "crashOnStart", "slowReadiness", "nodeNotReady", "api", "watch", "network", "exec"]
        if let unknown = root.keys.first(where: { !known.contains($0) }) {
            throw SimError("\(path): unknown fault `\(unknown)`; known: \(known.sorted().joined(separator: ", "))")
        }
        func items(_ key: String) throws -> [[String: Any]] {
            guard let value = root[key] else { return [] }
            guard let list = value as? [Any], let items = list as? [[String: Any]] else {
                throw SimError("\(path): `\(key)` must be a list of mappings")
            }
            return items
        }
        // Every number a fault takes is a count, a rate or a duration: finite, not negative, and bounded, so a typo
        // (1e18 ms of latency) is refused here instead of starting a sim that never answers.
        let bounds: [String: ClosedRange<Double>] = [
            "latencyMilliseconds": 0...60_000, "retryAfterSeconds": 0...3600, "dropAfterSeconds": 0.001...86_400,
            "delaySeconds": 0...86_400, "afterSeconds": 0...86_400, "exitCode": 0...255,
        ]
        func number(_ item: [String: Any], _ key: String, in field: String) throws -> Double? {
            guard let value = item[key] else { return nil }
            let number: Double
            if let int = value as? Int { number = Double(int) } else if let double = value as? Double { number = double } else {
                throw SimError("\(path): \(field).\(key) must be a number, got \(value)")
            }
            if let range = bounds[key], !range.contains(number) {
                throw SimError("\(path): \(field).\(key) must be between \(String(format: "%g", range.lowerBound)) and \(String(format: "%g", range.upperBound)), got \(value)")
            }
            guard number.isFinite else { throw SimError("\(path): \(field).\(key) must be a finite number, got \(value)") }
            return number
        }
        func match(_ item: [String: Any]) -> ContainerMatch {
            ContainerMatch(image: item["image"] as? String ?? "*", container: item["container"] as? String ?? "*",
                           namespace: item["namespace"] as? String ?? "*")
        }
        var plan = FaultPlan()
        plan.imagePullFailures = try items("imagePullFailure").map(match)
        plan.crashOnStart = try items("crashOnStart").map { Crash(match($0), exitCode: Int(try number($0, "exitCode", in: "crashOnStart") ?? 1)) }
        plan.slowReadiness = try items("slowReadiness").map {
            SlowReadiness(match($0), delay: .milliseconds(Int((try number($0, "delaySeconds", in: "slowReadiness") ?? 10) * 1000)))
        }
        plan.nodeNotReady = try items("nodeNotReady").map { item in
            guard let node = item["node"] as? String else { throw SimError("\(path): nodeNotReady needs `node: NAME`") }
            return NodeNotReady(node: node, after: .milliseconds(Int((try number(item, "afterSeconds", in: "nodeNotReady") ?? 0) * 1000)))
        }
        if let api = root["api"] as? [String: Any] {
            plan.apiLatency = .milliseconds(Int(try number(api, "latencyMilliseconds", in: "api") ?? 0))
            plan.apiErrorRate = try number(api, "errorRate", in: "api") ?? 0
            plan.apiErrorCode = Int(try number(api, "errorCode", in: "api") ?? 500)
            plan.retryAfterSeconds = Int(try number(api, "retryAfterSeconds", in: "api") ?? 1)
            guard (0...1).contains(plan.apiErrorRate) else { throw SimError("\(path): api.errorRate must be between 0 and 1") }
            guard [429, 500, 502, 503, 504].contains(plan.apiErrorCode) else {
                throw SimError("\(path): api.errorCode must be 429, 500, 502, 503 or 504, got \(plan.apiErrorCode)")
            }
            if let errors = api["errors"] {
                guard let list = errors as? [[String: Any]] else { throw SimError("\(path): api.errors must be a list of {code, rate} mappings") }
                plan.apiErrorMix = try list.map { item in
                    let code = Int(try number(item, "code", in: "api.errors") ?? 0), rate = try number(item, "rate", in: "api.errors") ?? 0
                    guard [429, 500, 502, 503, 504].contains(code) else {
                        throw SimError("\(path): api.errors code must be 429, 500, 502, 503 or 504, got \(code)")
                    }
                    return APIErrorShare(code: code, rate: rate)
                }
            }
            guard plan.apiErrorRate + plan.apiErrorMix.reduce(0, { $0 + $1.rate }) <= 1 else {
                throw SimError("\(path): api.errorRate and the api.errors rates add up to more than 1")
            }
        }
        if let watch = root["watch"] as? [String: Any] {
            plan.watchDropAfter = try number(watch, "dropAfterSeconds", in: "watch").map { .milliseconds(Int($0 * 1000)) }
            plan.watchGoneRate = try number(watch, "goneRate", in: "watch") ?? 0
        }
        if let exec = root["exec"] {
            guard let mapping = exec as? [String: Any] else { throw SimError("\(path): `exec` must be a mapping") }
            plan.execCutRate = try number(mapping, "cutRate", in: "exec") ?? 0
            guard (0...1).contains(plan.execCutRate) else { throw SimError("\(path): exec.cutRate must be between 0 and 1") }
        }
        if let network = root["network"] {
            guard let mapping = network as? [String: Any] else { throw SimError("\(path): `network` must be a mapping") }
            if let value = mapping["nodePortsUnreachable"] {
                guard let flag = value as? Bool else { throw SimError("\(path): network.nodePortsUnreachable must be true or false, got \(value)") }
                plan.nodePortsUnreachable = flag
            }
        }
        return plan
    }
}

/// The fault plan in force; tests change it while the sim runs.
public final class FaultSwitch: Sendable {
    private let box: Mutex<FaultPlan>
    public init(_ plan: FaultPlan = FaultPlan()) { box = Mutex(plan) }
    public var plan: FaultPlan {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}
