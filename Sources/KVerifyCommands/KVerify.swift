import ArgumentParser
import Findings
import Foundation
import Logging
#if os(Linux)
import CMalloc
#endif

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

    /// Entry point for the executable: bootstraps logging (only the executable does), runs, and exits.
    public static func runAsMain(arguments: [String]? = nil) async -> Never {
        let arguments = arguments ?? Array(CommandLine.arguments.dropFirst())
        #if os(Linux)
        // Blocks of 64 KiB and up get a mapping of their own, returned to the system when freed. glibc otherwise
        // serves them from per-thread heaps, where a fleet run's short-lived buffers stayed resident after each phase:
        // peak RSS at 500 nodes 138–142 MiB, 90–110 MiB with this (BENCHMARKS.md, issue #16). Not for `kverify sim`,
        // the scale benchmarks' bottleneck, whose cost under this policy was not measured apart from the spread.
        // Set here, for the executable only: it is process policy, not the library's.
        if arguments.first != "sim" { mallopt(M_MMAP_THRESHOLD, 64 << 10) }
        #endif
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            let level = ProcessInfo.processInfo.environment["KVERIFY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            handler.logLevel = level ?? .warning
            return handler
        }
        let status = await run(arguments: arguments)
        Foundation.exit(status)
    }

    /// Parses and runs one command line in process, and returns the exit code it ends with (kverify's documented
    /// codes; ArgumentParser's own usage errors would otherwise be 64). Reports go to stdout, errors to stderr.
    public static func run(arguments: [String]) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return ExitStatus.verified.rawValue
        } catch let exit as ExitCode {
            return exit.rawValue  // a command's own verdict (its report is already printed)
        } catch {
            let parserCode = exitCode(for: error)
            if parserCode == .success {  // --help, --version
                FileHandle.standardOutput.write(Data((fullMessage(for: error) + "\n").utf8))
                return ExitStatus.verified.rawValue
            }
            if parserCode == .validationFailure {
                // The message quotes what the user typed, which may hold terminal escapes (the validations redact the
                // secrets they quote themselves; the generic rules would take "passwd': expected" for one).
                FileHandle.standardError.write(Data((Redaction.escapeControlCharacters(fullMessage(for: error)) + "\n").utf8))
                return ExitStatus.usageOrInput.rawValue
            }
            FileHandle.standardError.write(Data("kverify: error: \(Redaction.redact(String(describing: error)))\n".utf8))
            return ExitCodes.status(for: error).rawValue
        }
    }
}
