import Foundation
import Processes

/// Runs the built `kverify` executable as a user would, and captures what it printed.
public struct KVerifyRun: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    /// - Parameters:
    ///   - arguments: the command line after `kverify`.
    ///   - stdin: bytes for standard input (empty input when nil).
    ///   - environment: added to this process's environment.
    ///   - timeout: the run is killed after this long and the call throws.
    ///   - workingDirectory: where to run it (commands such as `sim down` look for state relative to it).
    ///   - keepStdinOpen: after writing `stdin`, keep the pipe open until the process ends (a writer that stalls).
    ///
    /// The waiting happens on a thread of its own (`ProcessRunner`), not on one of the two cooperative threads
    /// that other tests (and an in-process simulated cluster) need to make progress.
    public static func run(
        _ arguments: [String], stdin: [UInt8]? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(120),
        workingDirectory: URL? = nil, keepStdinOpen: Bool = false
    ) async throws -> KVerifyRun {
        // A pattern run on --sim starts a cluster with gunicorn and Redis pods: it takes a slot like in-process ones.
        let startsPods = arguments.contains("--sim") && ["daemonset", "sidecar", "redis"].contains(arguments.first ?? "")
        if startsPods {
            return try await SimSlots.withSlot {
                try await spawn(arguments, stdin: stdin, environment: environment, timeout: timeout, workingDirectory: workingDirectory,
                                keepStdinOpen: keepStdinOpen)
            }
        }
        return try await spawn(arguments, stdin: stdin, environment: environment, timeout: timeout, workingDirectory: workingDirectory,
                               keepStdinOpen: keepStdinOpen)
    }

    private static func spawn(
        _ arguments: [String], stdin: [UInt8]?, environment: [String: String], timeout: Duration, workingDirectory: URL?,
        keepStdinOpen: Bool
    ) async throws -> KVerifyRun {
        let result = try await ProcessRunner.run(
            RepositoryPaths.kverifyExecutable.path, arguments: arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, stdin: stdin ?? [],
            timeout: timeout, workingDirectory: workingDirectory?.path, keepStdinOpen: keepStdinOpen)
        if result.timedOut {
            throw FixtureError("kverify \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        return KVerifyRun(status: result.status,
                          stdout: String(decoding: result.stdout, as: UTF8.self), stderr: String(decoding: result.stderr, as: UTF8.self))
    }
}
