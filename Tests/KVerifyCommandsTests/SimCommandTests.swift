import Foundation
import KVerifyTestSupport
import Testing

/// `kverify sim up/down` as a user runs them: the real executable, real signals.
@Suite("kverify sim", .serialized)
struct SimCommandTests {
    @Test("sim up prints the kubeconfig path once the API answers, and SIGTERM stops it and removes its state")
    func upAndSignal() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-simcli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
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
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-simcli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
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
}
