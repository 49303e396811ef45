import Foundation
import KVerifyTestSupport
import Processes
import Testing

/// The example package in Examples/DaemonSetOnSim depends on kverify by path and uses only its public library
/// products: building it proves the Swift API is importable by another package; running it proves the twenty
/// lines verify a DaemonSet on the sim.
@Suite("library example", .simSlot)
struct ExampleTests {
    @Test("Examples/DaemonSetOnSim builds against the public products and verifies the demo DaemonSet on the sim")
    func daemonSetOnSimExample() async throws {
        let root = RepositoryPaths.root
        let package = root.appendingPathComponent("Examples/DaemonSetOnSim").path
        // Its own scratch path inside the checkout (ignored by git), so a second run builds incrementally.
        let scratch = root.appendingPathComponent(".build-examples").path
        let environment = ProcessInfo.processInfo.environment
        let build = try await ProcessRunner.run(
            "swift", arguments: ["build", "--package-path", package, "--scratch-path", scratch], environment: environment,
            timeout: .seconds(1800))
        try #require(build.succeeded, "swift build of the example failed (exit \(build.exitCode)): \(build.stderrExcerpt(maxCharacters: 2000)) \(String(decoding: build.stdout.suffix(2000), as: UTF8.self))")

        // The sim finds its runtime map upwards from the working directory, and the network shim of the root build.
        let shim = RepositoryPaths.kverifyExecutable.deletingLastPathComponent().appendingPathComponent("libKVerifySimNet.so").path
        let run = try await ProcessRunner.run(
            "\(scratch)/debug/DaemonSetOnSim", arguments: [root.appendingPathComponent("manifests").path],
            environment: environment.merging(["KVERIFY_SIM_SHIM": shim]) { $1 }, timeout: .seconds(600),
            workingDirectory: root.path)
        let output = String(decoding: run.stdout, as: UTF8.self)
        #expect(run.exitCode == 0, "\(output)\n\(run.stderrExcerpt(maxCharacters: 2000))")
        #expect(output.contains("VERIFIED with"), "\(output)")
    }
}
