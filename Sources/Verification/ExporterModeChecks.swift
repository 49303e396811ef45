import Findings
import Foundation
import KubeClient
import PromText

/// Checks that follow from the exporter's mode (`ExporterConfig`), per pod:
/// - `exporter.workers`: every configured worker (`GUNICORN_WORKERS`, from env or YAML) serves and exports — the
///   distinct `worker_id` values of `gunicorn_worker_requests_total` reach that count. A worker writes its series only
///   when it serves a request, so more requests are sent while one is missing; this is also where an env setting
///   that overrides the YAML shows at run time.
/// - `exporter.multiproc_files` (multiprocess mode): the workers' `.db` files exist in `PROMETHEUS_MULTIPROC_DIR`,
///   one set per live worker process, read through exec in the gunicorn container.
public struct ExporterModeChecks: Sendable {
    public static let workersCheck = "exporter.workers"
    public static let filesCheck = "exporter.multiproc_files"

    public var config: ExporterConfig
    /// exec, scrape, traffic and polling in the gunicorn container.
    let pod: Lifecycle

    public init(api: any KubeAPI, namespace: String, config: ExporterConfig, timeout: Duration = .seconds(60)) {
        self.config = config
        pod = Lifecycle(api: api, namespace: namespace, container: config.container, timeout: timeout)
    }

    public func run(_ targets: [PodTarget]) async -> [Finding] {
        await withTaskGroup(of: [Finding].self) { group in
            for target in targets {
                group.addTask {
                    var findings: [Finding] = []
                    if let workers = self.config.workers { findings.append(await self.workers(target, expected: workers)) }
                    if self.config.mode == .multiprocess, let directory = self.config.multiprocDir { findings.append(await self.files(target, in: directory)) }
                    return findings
                }
            }
            var all: [Finding] = []
            for await findings in group { all += findings }
            return all.sorted { ($0.subject, $0.checkID) < ($1.subject, $1.checkID) }
        }
    }

    static func workerIDs(_ exposition: Exposition) -> Set<String> {
        Set(exposition.families.flatMap(\.samples).filter { $0.name == "gunicorn_worker_requests_total" }.compactMap { $0.label("worker_id") })
    }

    func workers(_ target: PodTarget, expected: Int) async -> Finding {
        let source = config.fromYAML.contains("GUNICORN_WORKERS") ? "GUNICORN_WORKERS from the YAML"
            : config.overridden.contains("GUNICORN_WORKERS") ? "GUNICORN_WORKERS from env, over the YAML's" : "GUNICORN_WORKERS"
        let wanted = "\(expected) workers (\(source)), each with its worker_id in gunicorn_worker_requests_total"
        do {
            let seen = try await pod.poll("\(expected) distinct worker_id values in gunicorn_worker_requests_total") {
                let ids = Self.workerIDs(try await self.pod.scrape(target))
                if ids.count >= expected { return ids }
                await self.pod.traffic(target, requests: 8)
                return nil
            }
            return target.scope(.pass(Self.workersCheck, subject: "container/\(config.container)", expected: wanted,
                                      observed: "\(seen.count) worker_id values: \(seen.sorted().joined(separator: ", "))"))
        } catch {
            let seen = (try? await pod.scrape(target)).map(Self.workerIDs) ?? []
            return target.scope(.fail(Self.workersCheck, subject: "container/\(config.container)", expected: wanted,
                                      observed: "\(seen.count) seen (\(seen.sorted().joined(separator: ", "))) after more requests: \(error)",
                                      detail: "a worker that never exports its series did not start, does not serve, or writes where the "
                                        + "metrics server does not read"))
        }
    }

    /// The pid in a prometheus_client multiprocess file name (`counter_123.db`, `gauge_all_123.db`).
    static func pid(ofFile name: String) -> Int? {
        guard name.hasSuffix(".db"), let last = name.dropLast(3).split(separator: "_").last else { return nil }
        return Int(last)
    }

    func files(_ target: PodTarget, in directory: String) async -> Finding {
        let subject = "container/\(config.container) \(directory)"
        let expected = "the workers' prometheus_client .db files in PROMETHEUS_MULTIPROC_DIR, for every live worker"
        do {
            let master = try await pod.findMaster(target)
            let workers = try await pod.children(of: master, in: target)
            // The container's own variable first: exec runs with the container's env (where the sim maps volume paths).
            let literal = directory.replacingOccurrences(of: "'", with: "'\\''")
            let listing = try await pod.shell("d=${PROMETHEUS_MULTIPROC_DIR:-'\(literal)'}; ls -A \"$d\"", target)
            let files = listing.split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasSuffix(".db") }
            let pids = Set(files.compactMap(Self.pid(ofFile:)))
            let missing = workers.subtracting(pids)
            let observed = "\(files.count) .db files for pids \(pids.sorted()); live workers \(workers.sorted())"
            guard !files.isEmpty, missing.isEmpty else {
                return target.scope(.fail(Self.filesCheck, subject: subject, expected: expected,
                                          observed: files.isEmpty ? "no .db file (ls: \(listing.isEmpty ? "empty" : listing))" : observed + "; no files for \(missing.sorted())",
                                          detail: "an image that sets REDIS_ENABLED=true (ENV in its Dockerfile) puts the exporter in Redis mode "
                                            + "whatever the files say: set REDIS_ENABLED in the pod's env"))
            }
            return target.scope(.pass(Self.filesCheck, subject: subject, expected: expected, observed: observed))
        } catch {
            return target.scope(.fail(Self.filesCheck, subject: subject, expected: expected, observed: "\(error)"))
        }
    }
}
