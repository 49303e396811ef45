import ArgumentParser
import Findings
import Foundation
import Logging

/// The root command. Subcommands live one per file in this module.
public struct KVerify: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kverify",
        abstract: "Verify Kubernetes deployments of Prometheus exporters: metrics, Redis TTLs, rollouts.",
        discussion: ExitStatus.documentation,
        version: "0.1.0",
        subcommands: [MetricsCommand.self, Redis.self, PreflightCommand.self, DaemonSetCommand.self, SidecarCommand.self, Sim.self]
    )

    public init() {}

    /// Entry point for the executable: parses, runs, and maps every error to kverify's documented exit codes
    /// (ArgumentParser's own usage errors would otherwise exit 64).
    public static func runAsMain(arguments: [String]? = nil) async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            let level = ProcessInfo.processInfo.environment["KVERIFY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            handler.logLevel = level ?? .warning
            return handler
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as KVerifyError {
            FileHandle.standardError.write(Data("kverify: error: \(error.message)\n".utf8))
            Foundation.exit(error.status.rawValue)
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usageOrInput.rawValue)
            }
            exit(withError: error)
        }
    }
}
