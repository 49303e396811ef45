import Foundation
import Processes
import Synchronization
import SimFaults
import SimStore

#if canImport(Glibc)
import Glibc
#endif

/// One running container: a real process in a process group of its own (so gunicorn's workers go with it), its
/// stdout and stderr appended to the container's log file. A container's environment also carries an
/// `EnvironmentMark` of its own (`KVERIFY_SIM_CONTAINER_ID`, its exec sessions' too), so a process that left the
/// group with `setsid` still ends with the container.
package final class ContainerProcess: Sendable {
    let pid: pid_t
    /// The container's mark, in this process's environment.
    let mark: EnvironmentMark?
    /// Whether this process's exit ends the mark's carriers: a container's does; an exec probe's command, which
    /// carries its container's mark, does not (nor does it scan /proc at every probe).
    private let endsMark: Bool
    private let exit = Mutex<Int32?>(nil)
    /// The write end of the container's stdin (`stdin: true` in its spec), for attach; -1 when closed or absent.
    private let stdinFD = Mutex<Int32>(-1)

    /// What a spawn needs, resolved: absolute executable, argv, environment, working directory.
    struct Launch {
        var executable: String
        var arguments: [String]
        var environment: [String: String]
        var workingDirectory: String
        var logFile: String
        /// The spec's `stdin: true`: the process reads a pipe that attach writes to, rather than /dev/null.
        var openStdin = false
    }

    /// Finds `command` on `PATH` the way a container runtime does (exec with the container's own PATH).
    static func resolve(_ command: String, path: String) -> String? { Spawn.resolve(command, path: path) }

    /// Starts the process, its output appended to the container's log. A container gets a new mark; an exec probe
    /// passes its container's (`of`), which its own exit leaves alone.
    /// - Throws: `SimError` with the OS's reason.
    init(_ launch: Launch, of container: ContainerProcess? = nil) throws {
        let mark = container == nil ? EnvironmentMark() : container?.mark
        self.mark = mark
        endsMark = container == nil
        var stdinPipe: [Int32] = [-1, -1]
        if launch.openStdin, !InteractiveProcess.cloexecPipe(&stdinPipe) {
            throw SimError("cannot create the stdin pipe of \(launch.executable): \(String(cString: strerror(errno)))")
        }
        do {
            var environment = launch.environment
            if let mark { environment[EnvironmentMark.variable] = mark.value }
            pid = try Spawn.start(SpawnRequest(
                command: launch.executable, arguments: launch.arguments, environment: environment,
                workingDirectory: launch.workingDirectory, stdin: launch.openStdin ? .descriptor(stdinPipe[0]) : .devNull,
                stdout: .file(path: launch.logFile, append: true)))
            // A container must not outlive the sim, even a sim killed with SIGKILL.
            GroupReaper.track(pid)
        } catch {
            for fd in stdinPipe where fd >= 0 { close(fd) }
            throw SimError(error.description)
        }
        if launch.openStdin {
            close(stdinPipe[0])
            // A container that stopped reading must not block the API server's writes: they fail with EAGAIN instead.
            _ = fcntl(stdinPipe[1], F_SETFL, fcntl(stdinPipe[1], F_GETFL) | O_NONBLOCK)
            stdinFD.withLock { $0 = stdinPipe[1] }
        }
    }

    deinit { closeStdin() }

    var hasStdin: Bool { stdinFD.withLock { $0 >= 0 } }

    /// Writes an attached client's input to the container's stdin (dropped when the pipe is full or closed).
    func writeStdin(_ bytes: [UInt8]) {
        stdinFD.withLock { fd in
            guard fd >= 0 else { return }
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return }
                written += n
            }
        }
    }

    /// EOF on the container's stdin (`stdinOnce` after the first attach ends).
    func closeStdin() {
        stdinFD.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// The exit code once the process ended (128 + signal when killed), nil while it runs. Never waits for the
    /// process. When the exit is first seen, what is left of the container goes: its group, and then (a scan of
    /// /proc, outside the lock) any process that carries its mark.
    var exitCode: Int32? {
        let (code, firstSeen) = exit.withLock { code -> (Int32?, Bool) in
            guard code == nil else { return (code, false) }
            code = Spawn.reapExitedGroup(leader: pid)
            return (code, code != nil)
        }
        if firstSeen, endsMark, let mark { mark.killCarriers() }
        return code
    }

    /// SIGTERM to the container's main process, then SIGKILL to the whole group after `grace` — as containerd stops
    /// a container (runc kill signals the init process only; the kill at the deadline takes every process). The main
    /// process shuts its children down itself: gunicorn's master stops its workers gracefully, and a worker that got
    /// a second SIGTERM straight from the runtime could be cut short in the middle of a write.
    func stop(grace: Duration) async -> Int32 {
        // An exited leader's orphans were killed when its exit was seen (`exitCode`).
        if let code = exitCode { return code }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while exitCode == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        // Not reaped yet (a zombie leader keeps the id reserved), so this reaches only this container's group.
        if exit.withLock({ $0 == nil }) { kill(-pid, SIGKILL) }
        while exitCode == nil { try? await Task.sleep(for: .milliseconds(5)) }
        return exitCode ?? 137
    }

    /// Synchronous kill for shutdown paths that cannot await (the process group, at once).
    func killNow() {
        guard exit.withLock({ $0 == nil }) else { return }
        kill(-pid, SIGKILL)
        var info = siginfo_t()
        _ = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT)  // until the leader has died; `exitCode` reaps it
        _ = exitCode
    }
}
