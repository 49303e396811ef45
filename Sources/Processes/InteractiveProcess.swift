import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child whose three standard streams are pipes held by the parent, for a session that streams both ways (an
/// exec into a sim container): stdout and stderr arrive as an `AsyncStream` while the child runs, stdin is written
/// in order on a queue of its own (a pipe write may block; it never runs on the cooperative pool) and can be closed
/// to send EOF. The child is in its own process group, registered with `GroupReaper` until reaped.
public final class InteractiveProcess: Sendable {
    /// One chunk of output: `1` for stdout, `2` for stderr.
    public struct Chunk: Sendable {
        public var stream: UInt8
        public var bytes: [UInt8]
    }

    public let pid: pid_t
    /// stdout and stderr chunks in the order they were read; finishes when both pipes reached EOF.
    public let output: AsyncStream<Chunk>
    private let stdinFD = Mutex<Int32>(-1)
    private let stdinQueue = DispatchQueue(label: "kverify.interactive.stdin")
    private let exit = Mutex<Int32?>(nil)
    /// Whether the child's exit also kills what is left of its group (see `init`).
    private let killsLeftovers: Bool

    /// Starts the process with pipes on its stdin, stdout and stderr.
    /// - Throws: `SpawnError` when it cannot be started (not found, not executable, no pipes).
    /// `killingLeftovers` false: the child's background jobs outlive it (an exec session, whose jobs a real node keeps
    /// running in the container; the sim ends them with the container).
    public init(_ request: SpawnRequest, killingLeftovers: Bool = true) throws(SpawnError) {
        killsLeftovers = killingLeftovers
        var input: [Int32] = [-1, -1], out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        guard Self.cloexecPipe(&input), Self.cloexecPipe(&out), Self.cloexecPipe(&err) else {
            for fd in input + out + err where fd >= 0 { close(fd) }
            throw SpawnError(command: request.command, reason: "pipe: \(String(cString: strerror(errno)))", errorNumber: errno)
        }
        var piped = request
        piped.stdin = .descriptor(input[0])
        piped.stdout = .descriptor(out[1])
        piped.stderr = .descriptor(err[1])
        let started: pid_t
        do {
            started = try Spawn.start(piped)
        } catch {
            for fd in input + out + err { close(fd) }
            throw error
        }
        close(input[0])
        close(out[1])
        close(err[1])
        pid = started
        GroupReaper.track(started)
        stdinFD.withLock { $0 = input[1] }
        let (stream, continuation) = AsyncStream<Chunk>.makeStream()
        output = stream
        let readers = (stdout: out[0], stderr: err[0])
        // A blocking poll loop on a thread of its own, as `ProcessRunner.stream` does.
        Thread {
            var open: [Int32: UInt8] = [readers.stdout: 1, readers.stderr: 2]
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !open.isEmpty {
                var fds = open.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                if poll(&fds, nfds_t(fds.count), -1) < 0 {
                    if errno == EINTR { continue }
                    break
                }
                for entry in fds where entry.revents != 0 {
                    let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        continuation.yield(Chunk(stream: open[entry.fd] ?? 1, bytes: Array(buffer[0..<n])))
                    } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                        open.removeValue(forKey: entry.fd)
                        close(entry.fd)
                    }
                }
            }
            for fd in open.keys { close(fd) }
            continuation.finish()
        }.start()
    }

    /// A pipe whose ends are not inherited by other children (glibc's pipe2 is not visible to Swift).
    public static func cloexecPipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return true
    }

    /// Queues `bytes` for the child's stdin; dropped once stdin is closed or the child stopped reading.
    public func write(_ bytes: [UInt8]) {
        stdinQueue.async { [self] in
            let fd = stdinFD.withLock { $0 }
            guard fd >= 0 else { return }
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return  // EPIPE: the child closed its stdin
                }
                written += n
            }
        }
    }

    /// Closes the child's stdin after what was queued before (EOF for `cat`).
    public func closeStdin() {
        stdinQueue.async { [self] in
            let fd = stdinFD.withLock { fd in
                defer { fd = -1 }
                return fd
            }
            if fd >= 0 { close(fd) }
        }
    }

    /// Waits for the child to exit and reaps it: its exit code (128 + signal when killed). Polls without blocking a
    /// thread of the cooperative pool.
    public func waitForExit() async -> Int32 {
        while true {
            if let code = exitCode { return code }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The exit code once the child ended, nil while it runs; reaps it and (unless told otherwise) kills what is
    /// left of its group.
    public var exitCode: Int32? {
        exit.withLock { code in
            if code == nil { code = Spawn.reapExitedGroup(leader: pid, killingLeftovers: killsLeftovers) }
            return code
        }
    }

    /// SIGKILL to the whole group (the client went away); the exit is reaped by `exitCode`.
    public func kill() {
        guard exit.withLock({ $0 == nil }) else { return }
        Glibc.kill(-pid, SIGKILL)
        closeStdin()
    }
}
