import Foundation
import KVerifyTestSupport
import Processes
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `kverify sim up/down` as a user runs them: the real executable, real signals.
@Suite("kverify sim", .serialized)
struct SimCommandTests {
    @Test("sim up prints the kubeconfig path once the API answers, and SIGTERM stops it and removes its state")
    func upAndSignal() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        let sim = try ChildProcess(name: "kverify-sim", executable: RepositoryPaths.kverifyExecutable,
                                   arguments: ["sim", "up", "--nodes", "2", "--kubeconfig", kubeconfig], workingDirectory: directory)
        defer { sim.stop() }
        let deadline = ContinuousClock.now + .seconds(60)
        while !sim.logTail().contains(kubeconfig), ContinuousClock.now < deadline, sim.isRunning {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(sim.logTail().split(separator: "\n").first.map(String.init) == kubeconfig, "\(sim.logTail())")
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(".kverify/sim/sim.pid").path))
        let text = try String(contentsOfFile: kubeconfig, encoding: .utf8)
        #expect(text.contains("client-key-data:"))

        let down = try await KVerifyRun.run(["sim", "down"], environment: [:], timeout: .seconds(30), workingDirectory: directory)
        #expect(down.status == 0, "\(down.stderr)")
        #expect(down.stdout.hasPrefix("stopped sim (pid \(sim.pid))"))
        #expect(!FileManager.default.fileExists(atPath: kubeconfig))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(".kverify/sim/sim.pid").path))
    }

    @Test("sim down without a running sim is a usage error naming the pidfile", arguments: [["sim", "down"]])
    func downWithoutSim(_ arguments: [String]) async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try await KVerifyRun.run(arguments, timeout: .seconds(30), workingDirectory: directory)
        #expect(run.status == 2)
        #expect(run.stderr.contains("no sim is running here: .kverify/sim/sim.pid does not exist"))
    }

    @Test("sim up rejects a bad node count with exit 2", arguments: ["0", "1001", "x"])
    func badNodes(_ nodes: String) async throws {
        let run = try await KVerifyRun.run(["sim", "up", "--nodes", nodes], timeout: .seconds(30))
        #expect(run.status == 2)
        #expect(run.stderr.contains("--nodes"))
    }

    @Test("sim up rejects a broken faults file or runtime map with exit 2, naming the file and the problem", arguments: [
        ("--faults", "crashOnStart: 3\n", "`crashOnStart` must be a list of mappings"),
        ("--faults", "nodeNotReady: [{afterSeconds: 1}]\n", "nodeNotReady needs `node: NAME`"),
        ("--faults", "nodeNotReady: [{node: nosuch}]\n", "nodeNotReady names node nosuch, which this sim does not have"),
        ("--faults", "api: {latencyMilliseconds: 1e18}\n", "api.latencyMilliseconds must be between 0 and 60000"),
        ("--runtime", "images: [{entrypoint: [x]}]\n", "images[0] needs an `image` pattern"),
        ("--runtime", "images:\n  - image: x\n    comand: [y]\n", "unknown field `comand`"),
    ])
    func badFiles(_ flag: String, _ contents: String, _ expected: String) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-simfile-\(UUID().uuidString.prefix(8)).yaml")
        try Data(contents.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try await KVerifyRun.run(["sim", "up", flag, file.path], timeout: .seconds(30),
                                           workingDirectory: FileManager.default.temporaryDirectory)
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.contains(file.path) && run.stderr.contains(expected), "\(run.stderr)")
    }

    @Test("sim up never overwrites a file it did not write at --kubeconfig (it removes its kubeconfig on stop): exit 2, the file intact")
    func upKeepsForeignKubeconfig() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let kubeconfig = directory.appendingPathComponent("config")
        try "apiVersion: v1\nkind: Config\ncurrent-context: prod\n".write(to: kubeconfig, atomically: false, encoding: .utf8)
        let run = try await KVerifyRun.run(["sim", "up", "--kubeconfig", kubeconfig.path], timeout: .seconds(30), workingDirectory: directory)
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("holds a file the sim did not write"), "\(run.stderr)")
        #expect(try String(contentsOf: kubeconfig, encoding: .utf8) == "apiVersion: v1\nkind: Config\ncurrent-context: prod\n")
    }

    /// A second `sim up` from another directory overwrote a running sim's kubeconfig, and removed it when it stopped
    /// (third adversarial pass of #18): the running sim's users lost their cluster.
    @Test("sim up refuses the kubeconfig path of a sim that still runs (exit 2, the file untouched); a killed sim's is taken")
    func upKeepsRunningSimsKubeconfig() async throws {
        let first = try scratchDirectory(), second = try scratchDirectory()
        defer { for directory in [first, second] { try? FileManager.default.removeItem(at: directory) } }
        let kubeconfig = first.appendingPathComponent("shared.kubeconfig").path
        let sim = try ChildProcess(name: "kverify-sim-first", executable: RepositoryPaths.kverifyExecutable,
                                   arguments: ["sim", "up", "--instant-kubelet", "--kubeconfig", kubeconfig], workingDirectory: first)
        defer { sim.stop() }
        try await sim.waitForLog(containing: kubeconfig, timeout: .seconds(60))
        let before = try String(contentsOfFile: kubeconfig, encoding: .utf8)
        let again = try await KVerifyRun.run(["sim", "up", "--instant-kubelet", "--kubeconfig", kubeconfig], timeout: .seconds(30), workingDirectory: second)
        #expect(again.status == 2, "\(again.stdout)\(again.stderr)")
        #expect(again.stderr.contains("is the kubeconfig of a sim that still runs (process \(sim.pid))"), "\(again.stderr)")
        #expect(try String(contentsOfFile: kubeconfig, encoding: .utf8) == before)
        // Killed, the first sim cannot remove its kubeconfig: the next sim may take that path.
        kill(sim.pid, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(15)
        while sim.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let next = try ChildProcess(name: "kverify-sim-next", executable: RepositoryPaths.kverifyExecutable,
                                    arguments: ["sim", "up", "--instant-kubelet", "--kubeconfig", kubeconfig], workingDirectory: second)
        defer { next.stop() }
        try await next.waitForLog(containing: kubeconfig, timeout: .seconds(60))
        #expect(try String(contentsOfFile: kubeconfig, encoding: .utf8) != before)
    }

    @Test("sim up without the network shim is exit 2 with the build step, before anything starts")
    func upWithoutShim() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        let run = try await KVerifyRun.run(["sim", "up", "--nodes", "2", "--kubeconfig", kubeconfig], environment: ["KVERIFY_SIM_SHIM": "/nonexistent/libKVerifySimNet.so"],
                                           timeout: .seconds(30), workingDirectory: directory)
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("kverify sim up cannot run pods here: the sim's network shim /nonexistent/libKVerifySimNet.so (KVERIFY_SIM_SHIM) does not exist"),
                "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: kubeconfig))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(".kverify/sim/sim.pid").path))
    }

    @Test("kill -9 of sim up takes its pods with it, a setsid escapee too; the stale pid file is never signalled and its state is removed at the next start")
    func killedSimLeavesNothing() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        let sim = try ChildProcess(name: "kverify-sim-kill", executable: RepositoryPaths.kverifyExecutable,
                                   arguments: ["sim", "up", "--nodes", "2", "--kubeconfig", kubeconfig], workingDirectory: directory)
        defer { sim.stop() }
        try await sim.waitForLog(containing: kubeconfig, timeout: .seconds(60))
        // Redis, a shell that forks a child of its own, and one whose child leaves the group with setsid: all must
        // go, the forked and the escaped ones too (the escapee is found by the watchdog through its environment).
        let pods = """
            apiVersion: v1
            kind: Pod
            metadata: {name: redis}
            spec: {containers: [{name: redis, image: "redis:7"}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: forker}
            spec: {containers: [{name: sh, image: busybox, command: [sh, -c, "sleep 600 & sleep 601"]}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: escaper}
            spec: {containers: [{name: sh, image: busybox, command: [sh, -c, "setsid sleep 602 & sleep 603"]}]}
            """
        let environment = ["KUBECONFIG": kubeconfig, "HOME": directory.path, "PATH": "/usr/bin:/bin"]
        let apply = try await ProcessRunner.run("/usr/bin/kubectl", arguments: ["apply", "-f", "-"], environment: environment,
                                                stdin: Array(pods.utf8), timeout: .seconds(60))
        #expect(apply.succeeded, "\(String(decoding: apply.stderr, as: UTF8.self))")
        let ready = try await ProcessRunner.run("/usr/bin/kubectl", arguments: ["wait", "--for=condition=Ready", "pod/redis", "pod/forker", "pod/escaper", "--timeout=60s"],
                                                environment: environment, timeout: .seconds(90))
        #expect(ready.succeeded, "\(String(decoding: ready.stderr, as: UTF8.self))")

        // The pods' process groups: the sim's children, but for the watchdog itself.
        let groups = Set(ProcessTable.children(of: sim.pid).filter { !ProcessTable.commandLine($0).contains("trap '' HUP INT") })
        let podProcesses = ProcessTable.members(ofGroups: groups)
        #expect(groups.count == 3, "sim children: \(ProcessTable.children(of: sim.pid).map(ProcessTable.commandLine))")
        #expect(podProcesses.count >= 3, "redis-server, sh and its sleeps: \(podProcesses.map(ProcessTable.commandLine))")
        let stateDirectories = ProcessTable.stateDirectories(ownedBy: sim.pid)
        #expect(stateDirectories.count == 1)
        func escapees() -> [Int32] {
            ProcessTable.all().map(\.pid).filter { ProcessTable.commandLine($0) == "sleep 602" && !groups.contains(getpgid($0)) }
        }
        let escapeDeadline = ContinuousClock.now + .seconds(10)
        while escapees().isEmpty, ContinuousClock.now < escapeDeadline { try await Task.sleep(for: .milliseconds(50)) }
        let escaped = escapees()
        #expect(escaped.count == 1, "the setsid child, outside every pod group")

        kill(sim.pid, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(15)
        while !ProcessTable.members(ofGroups: groups).isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(ProcessTable.members(ofGroups: groups).isEmpty,
                "survivors: \(ProcessTable.members(ofGroups: groups).map(ProcessTable.commandLine))")
        while escaped.contains(where: EnvironmentMark.isRunning), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let escapedSurvivors = escaped.filter(EnvironmentMark.isRunning)
        #expect(escapedSurvivors.isEmpty, "setsid escapees outlived the sim: \(escapedSurvivors)")
        for pid in escapedSurvivors { kill(pid, SIGKILL) }
        #expect(!sim.isRunning)

        // The pid file now names a dead process (or, after reuse, someone else's): removed, nothing signalled.
        let down = try await KVerifyRun.run(["sim", "down"], environment: [:], timeout: .seconds(30), workingDirectory: directory)
        #expect(down.status == 2, "\(down.stderr)")
        #expect(down.stderr.contains("no sim process \(sim.pid): it is not a running `kverify sim up` (stale .kverify/sim/sim.pid removed)"),
                "\(down.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(".kverify/sim/sim.pid").path))

        // The next sim's start removes the dead one's state directory.
        let next = try ChildProcess(name: "kverify-sim-next", executable: RepositoryPaths.kverifyExecutable,
                                    arguments: ["sim", "up", "--kubeconfig", kubeconfig], workingDirectory: directory)
        defer { next.stop() }
        try await next.waitForLog(containing: kubeconfig, timeout: .seconds(60))
        for stale in stateDirectories { #expect(!FileManager.default.fileExists(atPath: stale.path), "\(stale.path) left") }
    }

    @Test("kill -9 of `kverify daemonset --sim` mid-run takes the in-process sim's pods (gunicorn, redis-server) with it")
    func killedPatternRunLeavesNothing() async throws {
        try await SimSlots.withSlot {
            let directory = try scratchDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let run = try ChildProcess(name: "kverify-run-kill", executable: RepositoryPaths.kverifyExecutable,
                                       arguments: ["daemonset", "--sim", "--nodes", "2"], workingDirectory: directory)
            defer { run.stop() }
            // Wait until the run's pods are processes: a gunicorn among the members of the sim's pod groups.
            func podGroups() -> Set<Int32> {
                Set(ProcessTable.children(of: run.pid).filter { !ProcessTable.commandLine($0).contains("trap '' HUP INT") })
            }
            let deadline = ContinuousClock.now + .seconds(120)
            while !ProcessTable.members(ofGroups: podGroups()).contains(where: { ProcessTable.commandLine($0).contains("gunicorn") }),
                  ContinuousClock.now < deadline, run.isRunning {
                try await Task.sleep(for: .milliseconds(100))
            }
            let groups = podGroups()
            let members = ProcessTable.members(ofGroups: groups)
            try #require(members.contains { ProcessTable.commandLine($0).contains("gunicorn") }, "no gunicorn pod started: \(run.logTail())")
            #expect(members.contains { ProcessTable.commandLine($0).contains("redis-server") }, "\(members.map(ProcessTable.commandLine))")

            kill(run.pid, SIGKILL)
            let gone = ContinuousClock.now + .seconds(15)
            while !ProcessTable.members(ofGroups: groups).isEmpty, ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(50)) }
            #expect(ProcessTable.members(ofGroups: groups).isEmpty,
                    "survivors: \(ProcessTable.members(ofGroups: groups).map(ProcessTable.commandLine))")
        }
    }

    @Test("SIGHUP stops sim up as cleanly as SIGTERM: exit 0, pid file and kubeconfig removed")
    func hangupStops() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        let sim = try ChildProcess(name: "kverify-sim-hup", executable: RepositoryPaths.kverifyExecutable,
                                   arguments: ["sim", "up", "--kubeconfig", kubeconfig], workingDirectory: directory)
        defer { sim.stop() }
        try await sim.waitForLog(containing: kubeconfig, timeout: .seconds(60))
        kill(sim.pid, SIGHUP)
        let deadline = ContinuousClock.now + .seconds(30)
        while sim.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(sim.exitCode == 0, "\(sim.logTail())")
        #expect(sim.logTail().contains("kverify sim: signal \(SIGHUP), stopping"))
        #expect(!FileManager.default.fileExists(atPath: kubeconfig))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(".kverify/sim/sim.pid").path))
    }
}

/// Reads /proc: which processes a test's child left behind.
/// A fresh directory under $TMPDIR for one test: kverify's sim writes `.kverify/` into its working directory.
private func scratchDirectory() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-simcli-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

enum ProcessTable {
    /// (pid, ppid, pgid) of every process.
    static func all() -> [(pid: Int32, parent: Int32, group: Int32)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name in
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.range(of: ") ", options: .backwards) else { return nil }
            let fields = stat[end.upperBound...].split(separator: " ")
            // state, ppid, pgrp; a zombie has exited already.
            guard fields.count > 2, fields[0] != "Z", let parent = Int32(fields[1]), let group = Int32(fields[2]) else { return nil }
            return (pid, parent, group)
        }
    }

    static func children(of pid: Int32) -> [Int32] { all().filter { $0.parent == pid }.map(\.pid) }

    static func members(ofGroups groups: Set<Int32>) -> [Int32] { all().filter { groups.contains($0.group) }.map(\.pid) }

    static func commandLine(_ pid: Int32) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }

    /// The sim state directories (`$TMPDIR/kverify-sim-*`) whose owner file names `pid`.
    static func stateDirectories(ownedBy pid: Int32) -> [URL] {
        let temporary = FileManager.default.temporaryDirectory
        return ((try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []).filter { $0.hasPrefix("kverify-sim-") }
            .map { temporary.appendingPathComponent($0) }
            .filter { ((try? String(contentsOf: $0.appendingPathComponent("owner"), encoding: .utf8)) ?? "").hasPrefix("kverify-sim \(pid) ") }
    }
}
