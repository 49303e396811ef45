import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a short-lived helper process (an exec credential plugin, kubectl) to completion with a deadline.
///
/// Stdout and stderr are read to EOF while the process runs (so a chatty child never blocks on a full pipe),
/// each bounded by `maxOutputBytes`. The child gets its own process group, and on deadline the whole group is
/// killed — a shell script plugin's `sleep` grandchild would otherwise hold the pipe open forever.
public enum ProcessRunner {
    public struct Result: Sendable {
        public var exitCode: Int32
        /// Set when the process was ended by a signal (including our SIGKILL at the deadline).
        public var signal: Int32?
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        public var timedOut: Bool
        /// True when an output stream exceeded the bound and was cut.
        public var truncated: Bool

        public var succeeded: Bool { exitCode == 0 && signal == nil && !timedOut }
        /// The status a shell reports: the exit code, or 128 + the signal that ended the process.
        public var status: Int32 { signal.map { 128 + $0 } ?? exitCode }

        /// The last lines of stderr, trimmed, for error messages.
        public func stderrExcerpt(maxCharacters: Int = 400) -> String {
            let text = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.count > maxCharacters ? "…" + String(text.suffix(maxCharacters)) : text
        }
    }

    public enum Failure: Error, Sendable, CustomStringConvertible {
        case cannotStart(command: String, reason: String)
        public var description: String {
            switch self {
            case .cannotStart(let command, let reason): "cannot start \(command): \(reason)"
            }
        }
    }

    /// Runs `command` (looked up on `PATH` when it has no slash) and returns once it exited or the deadline passed.
    /// - Parameters:
    ///   - environment: the complete environment of the child.
    ///   - stdin: bytes written to the child's stdin, which is then closed.
    ///   - timeout: the whole-run deadline; the process group is killed when it passes.
    public static func run(
        _ command: String, arguments: [String], environment: [String: String],
        stdin: [UInt8] = [], timeout: Duration, maxOutputBytes: Int = 64 << 20, workingDirectory: String? = nil,
        keepStdinOpen: Bool = false
    ) async throws -> Result {
        // A blocking poll loop on its own thread keeps the cooperative pool free.
        try await Processes.runBlocking {
            try runToCompletion(command, arguments: arguments, environment: environment, stdin: stdin,
                                timeout: timeout, maxOutputBytes: maxOutputBytes, workingDirectory: workingDirectory,
                                keepStdinOpen: keepStdinOpen)
        }
    }

    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return true
    }

    /// A started child: its pid (also its process group) and our ends of its pipes.
    struct Spawned {
        var pid: pid_t
        var stdin: Int32
        var stdout: Int32
        var stderr: Int32
    }

    static func spawn(_ command: String, arguments: [String], environment: [String: String], workingDirectory: String? = nil) throws -> Spawned {
        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        // Our ends must not leak into other children spawned meanwhile (they would hold the pipes open).
        guard makePipe(&stdinPipe), makePipe(&stdoutPipe), makePipe(&stderrPipe) else {
            throw Failure.cannotStart(command: command, reason: "pipe: \(String(cString: strerror(errno)))")
        }
        let spawned = Swift.Result { () throws(SpawnError) -> pid_t in
            try Spawn.start(SpawnRequest(
                command: command, arguments: arguments, environment: environment, workingDirectory: workingDirectory,
                stdin: .descriptor(stdinPipe[0]),
                stdout: .descriptor(stdoutPipe[1]), stderr: .descriptor(stderrPipe[1])))
        }
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        switch spawned {
        case .success(let pid):
            return Spawned(pid: pid, stdin: stdinPipe[1], stdout: stdoutPipe[0], stderr: stderrPipe[0])
        case .failure(let error):
            close(stdinPipe[1])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            throw Failure.cannotStart(command: command, reason: error.reason)
        }
    }

    static func runToCompletion(
        _ command: String, arguments: [String], environment: [String: String],
        stdin input: [UInt8], timeout: Duration, maxOutputBytes: Int, workingDirectory: String?, keepStdinOpen: Bool = false
    ) throws -> Result {
        let child = try spawn(command, arguments: arguments, environment: environment, workingDirectory: workingDirectory)
        let pid = child.pid
        var stdinFD = child.stdin
        var written = 0
        _ = fcntl(stdinFD, F_SETFL, fcntl(stdinFD, F_GETFL) | O_NONBLOCK)
        // With keepStdinOpen the write end is held until the process ends (a test's stalled writer).
        var heldStdin: Int32 = -1
        func finishStdin() {
            if keepStdinOpen { heldStdin = stdinFD } else { close(stdinFD) }
            stdinFD = -1
        }
        if input.isEmpty { finishStdin() }
        var outputs: [Int32: [UInt8]] = [child.stdout: [], child.stderr: []]
        var open: Set<Int32> = [child.stdout, child.stderr]
        var truncated = false
        var timedOut = false
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65536)

        while !open.isEmpty || stdinFD >= 0 {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero {
                timedOut = true
                break
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            let milliseconds = Int32(clamping: max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            let ready = poll(&fds, nfds_t(fds.count), milliseconds)
            if ready < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == stdinFD {
                    let n = input[written...].withUnsafeBytes { write(stdinFD, $0.baseAddress, $0.count) }
                    if n > 0 { written += n }
                    if n < 0 && errno != EAGAIN || written >= input.count {
                        finishStdin()
                    }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    let room = maxOutputBytes - (outputs[entry.fd]?.count ?? 0)
                    if room > 0 { outputs[entry.fd]?.append(contentsOf: buffer[0..<min(n, room)]) }
                    if n > room { truncated = true }
                } else if n == 0 || errno != EINTR && errno != EAGAIN {
                    open.remove(entry.fd)
                    close(entry.fd)
                }
            }
        }
        if stdinFD >= 0 { close(stdinFD) }
        if heldStdin >= 0 { close(heldStdin) }
        for fd in open { close(fd) }
        if timedOut { kill(-pid, SIGKILL) }

        // The pipes are closed, so the child is exiting; wait for it (and kill the group if it lingers).
        var status: Int32 = 0
        let reapDeadline = ContinuousClock.now + .seconds(5)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if ContinuousClock.now > reapDeadline {
                kill(-pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                break
            }
            usleep(2_000)
        }
        // A plugin's background grandchildren must not outlive it either.
        if timedOut { kill(-pid, SIGKILL) }
        let signal = status & 0x7f
        return Result(
            exitCode: Spawn.exitedNormally(waitStatus: status) ? Spawn.exitCode(waitStatus: status) : -1, signal: signal == 0 ? nil : signal,
            stdout: outputs[child.stdout] ?? [], stderr: outputs[child.stderr] ?? [],
            timedOut: timedOut, truncated: truncated)
    }

    /// A stdout stream that ended with a failing exit status.
    public struct StreamFailure: Error, Sendable {
        public var exitCode: Int32
        public var signal: Int32?
        public var stderr: [UInt8]
    }

    /// Starts `command` and streams its stdout as it arrives. The stream finishes when the process exits: with
    /// `StreamFailure` (exit status and stderr) unless it exited 0. Ending the iteration kills the process group.
    public static func stream(
        _ command: String, arguments: [String], environment: [String: String], maxStderrBytes: Int = 1 << 20
    ) throws -> AsyncThrowingStream<[UInt8], any Error> {
        let child = try spawn(command, arguments: arguments, environment: environment)
        close(child.stdin)
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let stopped = StopFlag()
        continuation.onTermination = { _ in
            stopped.done.withLock { done in
                if !done { kill(-child.pid, SIGKILL) }
                done = true
            }
        }
        let thread = Thread {
            var stderr: [UInt8] = []
            var open: Set<Int32> = [child.stdout, child.stderr]
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !open.isEmpty {
                var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                // A bounded wait so a consumer that went away is noticed even if the child is silent.
                let ready = poll(&fds, nfds_t(fds.count), 200)
                if stopped.isSet { break }
                if ready < 0 && errno != EINTR { break }
                for entry in fds where entry.revents != 0 {
                    let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        if entry.fd == child.stdout {
                            continuation.yield(Array(buffer[0..<n]))
                        } else if stderr.count < maxStderrBytes {
                            stderr.append(contentsOf: buffer[0..<min(n, maxStderrBytes - stderr.count)])
                        }
                    } else if n == 0 || errno != EINTR && errno != EAGAIN {
                        open.remove(entry.fd)
                    }
                }
            }
            close(child.stdout)
            close(child.stderr)
            if stopped.isSet { kill(-child.pid, SIGKILL) }
            var status: Int32 = 0
            _ = waitpid(child.pid, &status, 0)
            stopped.done.withLock { $0 = true }
            let signal = status & 0x7f
            let exitCode = signal == 0 ? (status >> 8) & 0xff : -1
            if exitCode == 0 && signal == 0 {
                continuation.finish()
            } else {
                continuation.finish(throwing: StreamFailure(exitCode: exitCode, signal: signal == 0 ? nil : signal, stderr: stderr))
            }
        }
        thread.start()
        return stream
    }
}

/// Set once a streamed process is over or its consumer went away; shared by the reader thread and the stream.
private final class StopFlag: Sendable {
    let done = Mutex(false)
    var isSet: Bool { done.withLock { $0 } }
}
