import Foundation
import KVerifyTestSupport
import KubeSim
import SimFaults
import Testing

/// The real `/usr/bin/kubectl` (Google's version dispatcher) pointed at a sim, with a discovery cache of its own.
struct Kubectl: Sendable {
    struct Result: Sendable, CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    static let path = "/usr/bin/kubectl"
    let kubeconfig: String
    let cacheDirectory: URL
    /// More environment for kubectl (a client switch such as `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`).
    var extraEnvironment: [String: String] = [:]
    /// The program: kubectl, or another client that takes `--kubeconfig` (helm, through `Kubectl.helm`).
    var executable = Kubectl.path

    /// The real helm 3 (scripts/bootstrap.sh installs it into .tools/bin) for the same sim, its HOME (config, cache)
    /// in this client's scratch directory.
    func helm() -> Kubectl {
        var helm = self
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let installed = root.appendingPathComponent(".tools/bin/helm").path
        helm.executable = FileManager.default.isExecutableFile(atPath: installed) ? installed : "/usr/local/bin/helm"
        return helm
    }

    init(kubeconfig: String) throws {
        self.kubeconfig = kubeconfig
        cacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kubecache-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
    }

    var environment: [String: String] {
        ["KUBECACHEDIR": cacheDirectory.path, "KUBECONFIG": kubeconfig, "HOME": cacheDirectory.path].merging(extraEnvironment) { $1 }
    }

    /// Runs one kubectl command to completion; killed (and the call throws) after `timeout`.
    @discardableResult
    func callAsFunction(_ arguments: String..., stdin: String? = nil, timeout: Duration = .seconds(60)) async throws -> Result {
        try await run(arguments, stdin: stdin, timeout: timeout)
    }

    /// Never blocks a Swift concurrency thread: the sim's own tasks share that small pool (2 threads on CI), and a
    /// blocking wait there starves the server the command talks to.
    func run(_ arguments: [String], stdin: String? = nil, timeout: Duration = .seconds(60)) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--kubeconfig", kubeconfig] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe(), errors = Pipe(), input = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
        try process.run()
        let collected = Collected()
        let group = DispatchGroup()
        for (pipe, isError) in [(output, false), (errors, true)] {
            group.enter()
            DispatchQueue.global().async {
                collected.set(pipe.fileHandleForReading.readDataToEndOfFile(), isError: isError)
                group.leave()
            }
        }
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning || !collected.complete {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw FixtureError("\(URL(fileURLWithPath: executable).lastPathComponent) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        _ = group
        return Result(status: process.terminationStatus, stdout: collected.stdout, stderr: collected.stderr)
    }

    /// Starts a long-running kubectl (a watch) whose output goes to a log file.
    func background(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(name: "kubectl", executable: URL(fileURLWithPath: Self.path),
                         arguments: ["--kubeconfig", kubeconfig] + arguments, environment: environment)
    }

    func cleanUp() { try? FileManager.default.removeItem(at: cacheDirectory) }
}

private final class Collected: @unchecked Sendable {  // written by two reader threads under `lock`
    private let lock = NSLock()
    private var out = Data(), err = Data()
    private var finished = 0
    func set(_ data: Data, isError: Bool) {
        lock.withLock {
            if isError { err = data } else { out = data }
            finished += 1
        }
    }
    var complete: Bool { lock.withLock { finished == 2 } }
    var stdout: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: err, as: UTF8.self) } }
}

extension Kubectl.Result {
    /// Expects exit 0 and, when it is not, records what kubectl printed: the status alone does not say why.
    func expectSuccess(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(status == 0, "\(self)", sourceLocation: sourceLocation)
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held. For output of background
/// processes, which has no event to wait on.
func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}

/// `eventually` for a condition that awaits (a kubectl run); an error counts as "not yet". Polls every 200 ms.
func eventuallyAsync(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return true }
        try? await Task.sleep(for: .milliseconds(200))
    }
    return (try? await condition()) == true
}

/// Starts a sim and a kubectl for it (holding a `.cluster` slot), runs `body`, and cleans both up, also when `body`
/// throws.
func withSim<T: Sendable>(nodes: Int = 3, historyLimit: Int = 5000, bookmarkInterval: Duration = .seconds(5),
                          kubelet: SimulatedCluster.KubeletMode = .processes, faults: FaultPlan = FaultPlan(),
                          _ body: (SimulatedCluster, Kubectl) async throws -> T) async throws -> T {
    var options = SimulatedCluster.Options(nodes: nodes, bookmarkInterval: bookmarkInterval, historyLimit: historyLimit)
    options.kubelet = kubelet
    options.faults = faults
    return try await SimSlots.withSlot(.cluster) {
        try await SimulatedCluster.with(options: options) { sim in
            let kubectl = try Kubectl(kubeconfig: sim.kubeconfigPath)
            defer { kubectl.cleanUp() }
            return try await body(sim, kubectl)
        }
    }
}
