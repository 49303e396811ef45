import Foundation
import KVerifyTestSupport
import Testing

/// `kverify preflight` as a user runs it: the built executable against the fake API server.
@Suite("kverify preflight")
struct PreflightCommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func kverify(_ arguments: [String], cache: URL) throws -> Run {
        let process = Process()
        process.executableURL = RepositoryPaths.kverifyExecutable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECACHEDIR"] = cache.path
        environment.removeValue(forKey: "KUBECONFIG")
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes to EOF before waiting, so a long report cannot block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [String]
        var deny: [String] = []
        var trustOtherCA = false
        var status: Int32
        var mentions: String
        var testDescription: String { name }
    }

    static let cases: [Case] = ["api", "kubectl"].flatMap { backend in
        [
            Case(name: "\(backend): enough nodes, all permissions → 0", arguments: ["--backend", backend, "--nodes", "2"],
                 status: 0, mentions: "VERIFIED: preflight"),
            Case(name: "\(backend): too few schedulable nodes → 1", arguments: ["--backend", backend, "--nodes", "3"],
                 status: 1, mentions: "nodes.schedulable"),
            Case(name: "\(backend): missing pods/proxy permission → 1", arguments: ["--backend", backend], deny: ["pods/proxy"],
                 status: 1, mentions: "get pods/proxy in obs"),
            Case(name: "\(backend): unknown context → 2", arguments: ["--backend", backend, "--context", "nope"],
                 status: 2, mentions: "context 'nope' not found"),
            Case(name: "\(backend): wrong CA → 3", arguments: ["--backend", backend], trustOtherCA: true,
                 status: 3, mentions: "preflight:"),
        ]
    }

    @Test(arguments: cases)
    func preflight(_ c: Case) async throws {
        try await TestCertificates.with { certificates in
            let server = try await KubeAPIServerFixture(certificates: certificates, deny: c.deny)
            defer { server.stop() }
            let kubeconfig = try server.writeKubeconfig(to: certificates.directory, trustOtherCA: c.trustOtherCA)
            let run = try Self.kverify(["preflight", "--kubeconfig", kubeconfig] + c.arguments,
                                       cache: certificates.directory.appendingPathComponent("cache"))
            #expect(run.status == c.status, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
            #expect((run.stdout + run.stderr).contains(c.mentions), "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        }
    }
}
