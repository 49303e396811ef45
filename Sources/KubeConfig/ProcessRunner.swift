import Foundation

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
        stdin: [UInt8] = [], timeout: Duration, maxOutputBytes: Int = 64 << 20
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            // A blocking poll loop on its own thread keeps the cooperative pool free.
            let thread = Thread {
                continuation.resume(
                    with: Swift.Result {
                        try runBlocking(
                            command, arguments: arguments, environment: environment, stdin: stdin,
                            timeout: timeout, maxOutputBytes: maxOutputBytes)
                    })
            }
            thread.start()
        }
    }

    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return true
    }

    static func runBlocking(
        _ command: String, arguments: [String], environment: [String: String],
        stdin input: [UInt8], timeout: Duration, maxOutputBytes: Int
    ) throws -> Result {
        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        // Our ends must not leak into other children spawned meanwhile (they would hold the pipes open).
        guard makePipe(&stdinPipe), makePipe(&stdoutPipe), makePipe(&stderrPipe) else {
            throw Failure.cannotStart(command: command, reason: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv = ([command] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var spawned: Int32 = ENOENT
        // posix_spawnp would search the *parent's* PATH; use the child's, as a shell would.
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let candidates: [String] = path.split(separator: ":").map { "\($0)/\(command)" }
        let resolved: String? = command.contains("/") ? command : candidates.first { access($0, X_OK) == 0 }
        if let resolved {
            // ETXTBSY: a script written a moment ago may still be open for writing in a child that another
            // thread forked meanwhile (its exec closes it). Retry briefly, as shells do.
            for attempt in 0..<50 {
                spawned = posix_spawn(&pid, resolved, &actions, &attributes, argv, envp)
                guard spawned == ETXTBSY, attempt < 49 else { break }
                usleep(20_000)
            }
        }
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdinPipe[1])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            throw Failure.cannotStart(command: command, reason: String(cString: strerror(spawned)))
        }

        var stdinFD = stdinPipe[1]
        var written = 0
        _ = fcntl(stdinFD, F_SETFL, fcntl(stdinFD, F_GETFL) | O_NONBLOCK)
        if input.isEmpty {
            close(stdinFD)
            stdinFD = -1
        }
        var outputs: [Int32: [UInt8]] = [stdoutPipe[0]: [], stderrPipe[0]: []]
        var open: Set<Int32> = [stdoutPipe[0], stderrPipe[0]]
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
                        close(stdinFD)
                        stdinFD = -1
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
            exitCode: signal == 0 ? (status >> 8) & 0xff : -1, signal: signal == 0 ? nil : signal,
            stdout: outputs[stdoutPipe[0]] ?? [], stderr: outputs[stderrPipe[0]] ?? [],
            timedOut: timedOut, truncated: truncated)
    }
}
