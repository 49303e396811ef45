import Foundation

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
    /// Async so the waiting happens on a Dispatch thread, not on one of the two cooperative threads that other
    /// tests (and an in-process simulated cluster) need to make progress.
    public static func run(
        _ arguments: [String], stdin: [UInt8]? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(120),
        workingDirectory: URL? = nil, keepStdinOpen: Bool = false
    ) async throws -> KVerifyRun {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    try runBlocking(arguments, stdin: stdin, environment: environment, timeout: timeout, workingDirectory: workingDirectory,
                                    keepStdinOpen: keepStdinOpen)
                })
            }
        }
    }

    private static func runBlocking(
        _ arguments: [String], stdin: [UInt8]?, environment: [String: String], timeout: Duration, workingDirectory: URL?,
        keepStdinOpen: Bool
    ) throws -> KVerifyRun {
        let process = Process()
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        process.executableURL = RepositoryPaths.kverifyExecutable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        let errors = Pipe()
        let input = Pipe()
        // Close-on-exec at once: tests spawn processes in parallel, and a child started elsewhere that inherited
        // the write end of kverify's stdin would keep it from ever seeing end of input (kverify's --timeout then
        // ends the read with exit 3). Process still hands the ends it wires up to kverify itself (dup2 clears it).
        for pipe in [output, errors, input] {
            for handle in [pipe.fileHandleForReading, pipe.fileHandleForWriting] {
                _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
            }
        }
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
        try process.run()
        // Read both pipes concurrently so a chatty process cannot block on a full pipe.
        let collected = CollectedOutput()
        let group = DispatchGroup()
        for (pipe, isError) in [(output, false), (errors, true)] {
            group.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collected.set(data, isError: isError)
                group.leave()
            }
        }
        if let stdin { input.fileHandleForWriting.write(Data(stdin)) }
        if !keepStdinOpen { try? input.fileHandleForWriting.close() }
        defer { if keepStdinOpen { try? input.fileHandleForWriting.close() } }
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.components.seconds * 1000))
        if group.wait(timeout: deadline) == .timedOut {
            process.terminate()
            throw FixtureError("kverify \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        process.waitUntilExit()
        return KVerifyRun(status: process.terminationStatus, stdout: collected.stdout, stderr: collected.stderr)
    }
}

private final class CollectedOutput: @unchecked Sendable {  // written by two reader threads under `lock`
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()

    func set(_ data: Data, isError: Bool) {
        lock.withLock { if isError { err = data } else { out = data } }
    }

    var stdout: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: err, as: UTF8.self) } }
}
