import ArgumentParser
import Findings
import Foundation
import KubeSim
import SimFaults
import SimNode
import SimStore
import Logging

#if canImport(Glibc)
import Glibc
#endif

extension KVerify {
    /// `kverify sim`: a local Kubernetes API that the real kubectl drives (see the KubeSim module).
    public struct Sim: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "sim",
            abstract: "Run a simulated multi-node Kubernetes API server on loopback (no Docker needed).",
            discussion: upExitCodes,
            subcommands: [Up.self, Down.self]
        )

        public init() {}

        static let upExitCodes = """
            EXIT CODES
              0  the sim ran and stopped cleanly (Ctrl-C, SIGTERM, SIGHUP or `kverify sim down`)
              1  an unexpected failure while it ran
              2  bad options or an unreadable --runtime/--faults file (named, with the field), or a sim already runs here
              3  the sim could not start: its port is taken, openssl failed, no loopback network could be claimed
            """

        /// Where `sim up` records its pid, relative to the working directory.
        static let pidFile = ".kverify/sim/sim.pid"

        /// The pid the pid file names when that process is a running `kverify sim up`; a stale file (its sim was
        /// killed with SIGKILL, the pid reused) is removed and nil returned.
        static func recordedSim() -> Int32? {
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
            if let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), isSimProcess(pid) { return pid }
            try? FileManager.default.removeItem(atPath: pidFile)
            return nil
        }

        /// Whether `pid` runs `kverify sim up` (its `/proc/PID/cmdline`), so nothing else is ever signalled.
        static func isSimProcess(_ pid: Int32) -> Bool {
            guard pid > 1, Down.isAlive(pid),
                  let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard argv.count >= 3, let program = argv[0].split(separator: "/").last, program.hasPrefix("kverify") else { return false }
            return argv[1] == "sim" && argv[2] == "up"
        }
    }
}

extension KVerify.Sim {
    /// `kverify sim up`: runs in the foreground until Ctrl-C, SIGTERM or SIGHUP, then removes its state. Its pods
    /// die with it even when it is killed with SIGKILL (`GroupReaper`).
    public struct Up: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Start the simulated cluster in the foreground; prints the kubeconfig path once the API answers.",
            discussion: KVerify.Sim.upExitCodes)

        @Option(help: "Number of nodes (the first is the control plane, tainted NoSchedule as in kind).")
        var nodes = 1

        @Option(help: "Where to write the kubeconfig (kind's shape, mode 0600; removed on exit).")
        var kubeconfig: String?

        @Option(help: "API server port on 127.0.0.1 (0 picks a free one).")
        var port = 0

        @Option(help: "Runtime map: how images run on this machine (default: sim/runtime.yaml of the checkout).")
        var runtime: String?

        @Option(help: "Faults to inject, a YAML file (image pull failures, crashes, slow readiness, node NotReady, API errors, watch drops; see sim/faults.example.yaml).")
        var faults: String?

        @Flag(help: "Mark scheduled pods Running and Ready at once without running them (for API-only experiments; probes are then not real).")
        var instantKubelet = false

        @Flag(help: "Serve HTTP/1.1 only: no HTTP/2 offered in the TLS handshake (to compare, or for a client that mishandles h2).")
        var http1Only = false

        public init() {}

        public func validate() throws {
            guard (1...1000).contains(nodes) else { throw ValidationError("--nodes must be between 1 and 1000, got \(nodes)") }
            guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
        }

        public func run() async throws {
            // Bad input files are usage errors (exit 2), found before anything starts.
            var faultPlan = FaultPlan()
            do {
                if let faults {
                    faultPlan = try FaultPlan.load(path: faults)
                    if let problem = faultPlan.problem(forNodes: SimulatedCluster.nodeNames(nodes)) { throw SimError("\(faults): \(problem)") }
                }
                if let runtime { _ = try RuntimeMap.load(path: runtime) }
            } catch {
                throw KVerifyError(.usageOrInput, "kverify sim: \(error)")
            }
            if let kubeconfig, let problem = Kubeconfig.overwriteProblem(at: kubeconfig) {
                throw KVerifyError(.usageOrInput, "kverify sim up: \(problem)")
            }
            // Pods run as processes unless the kubelet is instant; without the shim they would share this host's ports.
            if !instantKubelet, let problem = SimPrerequisites.shimProblem() {
                throw KVerifyError(.usageOrInput, "kverify sim up cannot run pods here: \(problem)")
            }
            let pidURL = URL(fileURLWithPath: KVerify.Sim.pidFile)
            if let pid = KVerify.Sim.recordedSim() {
                throw KVerifyError(.usageOrInput, "a sim is already running here (pid \(pid), \(KVerify.Sim.pidFile)); stop it with `kverify sim down`")
            }
            // Block the signals first, then watch them, so a Ctrl-C during start-up is not lost. SIGHUP (the
            // terminal closed) stops it as cleanly as SIGTERM.
            let signals = SignalWaiter([SIGINT, SIGTERM, SIGHUP])
            let sim: SimulatedCluster
            do {
                var options = SimulatedCluster.Options(nodes: nodes, port: port, kubeconfigPath: kubeconfig)
                options.instantKubelet = instantKubelet
                options.http2 = !http1Only
                options.runtimePath = runtime
                options.faults = faultPlan
                sim = try await SimulatedCluster.start(options: options)
            } catch {
                throw KVerifyError(.unreachable, "kverify sim could not start: \(error)")
            }
            try? FileManager.default.createDirectory(at: pidURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? Data("\(getpid())\n".utf8).write(to: pidURL)
            FileHandle.standardOutput.write(Data("\(sim.kubeconfigPath)\n".utf8))
            FileHandle.standardError.write(Data("kverify sim: \(nodes) node(s) at \(sim.serverURL); export KUBECONFIG=\(sim.kubeconfigPath); Ctrl-C stops it\n".utf8))
            let received = await signals.next()
            FileHandle.standardError.write(Data("kverify sim: signal \(received), stopping\n".utf8))
            await sim.stop()
            try? FileManager.default.removeItem(at: pidURL)
        }
    }

    /// `kverify sim down`: stops a sim started in the background from this directory.
    public struct Down: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Stop the simulated cluster started from this directory.",
            discussion: """
                EXIT CODES
                  0  the sim stopped
                  1  an unexpected failure
                  2  no sim runs here: no pid file, or one that names no sim process (it is removed)
                  3  the sim still runs after SIGTERM and the timeout
                """)

        @Option(help: "How long to wait for it to exit, in seconds.")
        var timeout = 15

        public init() {}

        public func run() async throws {
            let pidURL = URL(fileURLWithPath: KVerify.Sim.pidFile)
            guard let text = try? String(contentsOf: pidURL, encoding: .utf8) else {
                throw KVerifyError(.usageOrInput, "no sim is running here: \(KVerify.Sim.pidFile) does not exist")
            }
            guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else {
                throw KVerifyError(.usageOrInput, "\(KVerify.Sim.pidFile) should hold a process id, holds \"\(text.prefix(40))\"")
            }
            // A sim killed with SIGKILL leaves its pid file; the pid may since belong to anything else.
            guard KVerify.Sim.isSimProcess(pid), kill(pid, SIGTERM) == 0 else {
                try? FileManager.default.removeItem(at: pidURL)
                throw KVerifyError(.usageOrInput, "no sim process \(pid): it is not a running `kverify sim up` (stale \(KVerify.Sim.pidFile) removed)")
            }
            let deadline = ContinuousClock.now + .seconds(timeout)
            while Self.isAlive(pid) {
                guard ContinuousClock.now < deadline else {
                    throw KVerifyError(.unreachable, "sim process \(pid) still runs \(timeout)s after SIGTERM")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            FileHandle.standardOutput.write(Data("stopped sim (pid \(pid))\n".utf8))
        }

        /// Whether `pid` still runs; an exited process its parent has not reaped yet (a zombie) has stopped.
        static func isAlive(_ pid: Int32) -> Bool {
            guard kill(pid, 0) == 0 else { return false }
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.range(of: ") ", options: .backwards) else { return true }
            return !stat[end.upperBound...].hasPrefix("Z")
        }
    }
}

/// Turns SIGINT/SIGTERM/SIGHUP into an awaitable event instead of the default "die at once".
final class SignalWaiter {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(_ signals: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    func next() async -> Int32 {
        for await number in stream { return number }
        return 0
    }
}
