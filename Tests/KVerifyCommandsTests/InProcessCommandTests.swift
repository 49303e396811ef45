import ArgumentParser
import Findings
import Foundation
@testable import KVerifyCommands
import KubeClient
import KubeConfig
import MetricRules
import RESP
import Testing

/// The commands parsed and run in process (`KVerify.run(arguments:)`), without starting the binary.
@Suite("commands in process")
struct InProcessCommandTests {
    /// Every command type below the root, depth first.
    static func allCommands(_ root: any ParsableCommand.Type = KVerify.self) -> [any ParsableCommand.Type] {
        root.configuration.subcommands.flatMap { [$0] + allCommands($0) }
    }

    @Test("every subcommand resolves by its name and its help documents the exit codes")
    func helpForEverySubcommand() {
        let commands = Self.allCommands()
        #expect(commands.count >= 8, "\(commands)")  // metrics redis preflight daemonset sidecar sim (up, down)
        for command in commands {
            let path = Self.path(to: command)
            // The parser resolves the path: `--help` below it is help (a clean exit), not an unknown-command error.
            do { _ = try KVerify.parseAsRoot(path + ["--help"]) } catch {
                #expect(KVerify.exitCode(for: error) == .success, "\(path): \(KVerify.fullMessage(for: error))")
            }
            let help = KVerify.helpMessage(for: command)
            #expect(help.contains("USAGE: kverify \(path.joined(separator: " "))"), "\(path): \(help.prefix(200))")
            for code in ExitStatus.allCases {
                #expect(help.contains("  \(code.rawValue)  "), "kverify \(path.joined(separator: " ")) --help does not document exit code \(code.rawValue)")
            }
        }
    }

    @Test("in process: a usage error and a bad rules file are exit 2, a clean file exit 0")
    func usageAndInputErrors() async throws {
        #expect(await KVerify.run(arguments: ["metrics", "--no-such-flag"]) == ExitStatus.usageOrInput.rawValue)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-inprocess-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let metrics = directory.appendingPathComponent("m.prom").path
        try Data("g 1\n".utf8).write(to: URL(fileURLWithPath: metrics))
        let rules = directory.appendingPathComponent("rules.yaml").path
        try Data("rules:\n  - id: a\n    metric: g\n    valu: 1\n".utf8).write(to: URL(fileURLWithPath: rules))
        #expect(await KVerify.run(arguments: ["metrics", "--file", metrics, "--rules", rules, "--quiet"]) == ExitStatus.usageOrInput.rawValue)
        #expect(await KVerify.run(arguments: ["metrics", "--file", metrics, "--quiet"]) == ExitStatus.verified.rawValue)
    }

    @Test("errors of the lower modules map to the documented exit codes in one place")
    func exitCodeMapping() {
        #expect(ExitCodes.status(for: KubeError(.invalid, "x")) == .usageOrInput)
        #expect(ExitCodes.status(for: KubeError(.badManifest, "x")) == .usageOrInput)
        #expect(ExitCodes.status(for: KubeError(.conflict, "x")) == .usageOrInput)
        #expect(ExitCodes.status(for: KubeError(.notFound, "x")) == .checkFailed)
        #expect(ExitCodes.status(for: KubeError(.unreachable, "x")) == .unreachable)
        #expect(ExitCodes.status(for: KubeError(.tlsFailed, "x")) == .unreachable)
        #expect(ExitCodes.status(for: KubeError(.badResponse, "x")) == .unreachable)
        #expect(ExitCodes.status(for: KubeConfigError(.malformed, "x")) == .usageOrInput)
        #expect(ExitCodes.status(for: KubeConfigError(.userNotFound, "x")) == .usageOrInput)
        #expect(ExitCodes.status(for: KubeConfigError(.certificateExpired, "x")) == .unreachable)
        #expect(ExitCodes.status(for: KubeConfigError(.execFailed, "x")) == .unreachable)
        #expect(ExitCodes.status(for: RuleFileError(file: "r.yaml", line: 1, column: 1, message: "x")) == .usageOrInput)
        #expect(ExitCodes.status(for: KVerifyError(.unreachable, "x")) == .unreachable)
        let wrapped = KVerifyError(.usageOrInput, "manifests/x.yaml", cause: KubeError(.badManifest, "line 3: not a mapping"))
        #expect(wrapped.description == "manifests/x.yaml: line 3: not a mapping")
    }

    static func path(to command: any ParsableCommand.Type, from root: any ParsableCommand.Type = KVerify.self) -> [String] {
        for sub in root.configuration.subcommands {
            let name = sub._commandName
            if sub == command { return [name] }
            let rest = path(to: command, from: sub)
            if !rest.isEmpty { return [name] + rest }
        }
        return []
    }
}
