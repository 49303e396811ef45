import Foundation
import SimFaults
import SimStore
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// One running container: a real process in a process group of its own (so gunicorn's workers go with it), its
/// stdout and stderr appended to the container's log file.
package final class ContainerProcess: Sendable {
    let pid: pid_t
    private let exit = NIOLockedValueBox<Int32?>(nil)

    /// What a spawn needs, resolved: absolute executable, argv, environment, working directory.
    struct Launch {
        var executable: String
        var arguments: [String]
        var environment: [String: String]
        var workingDirectory: String
        var logFile: String
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does not declare.
    private static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    /// Finds `command` on `PATH` the way a container runtime does (exec with the container's own PATH).
    static func resolve(_ command: String, path: String) -> String? {
        if command.contains("/") { return FileManager.default.isExecutableFile(atPath: command) ? command : nil }
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(command)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// Starts the process. - Throws: `SimError` with the OS's reason.
    init(_ launch: Launch) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A cleared mask and default dispositions: the sim's own blocked signals must not make pods deaf to SIGTERM.
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, launch.logFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing of the sim's (listening sockets, the API server's connections) may leak into a pod.
        if let closeFrom = Self.closeFrom { _ = closeFrom(&actions, 3) }

        // glibc's addchdir_np is not visible to Swift; coreutils' `env -C` changes directory, then execs.
        let command = ["/usr/bin/env", "-C", launch.workingDirectory, launch.executable] + launch.arguments
        let argv = command.map { strdup($0) } + [nil]
        let envp = launch.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, command[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw SimError("cannot start \(launch.executable): \(String(cString: strerror(result)))")
        }
        pid = child
    }

    /// The exit code once the process ended (128 + signal when killed), nil while it runs. Never blocks.
    var exitCode: Int32? {
        exit.withLockedValue { code in
            if let code { return code }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (the C macros are not imported).
                let signal = status & 0x7f
                code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
            } else if result < 0 && errno == ECHILD {
                code = 255
            }
            return code
        }
    }

    /// SIGTERM to the whole group, then SIGKILL after `grace` — a process that ignores SIGTERM is not left behind.
    func stop(grace: Duration) async -> Int32 {
        if let code = exitCode {
            kill(-pid, SIGKILL)  // orphaned children of an exited leader
            return code
        }
        kill(-pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while exitCode == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        kill(-pid, SIGKILL)
        while exitCode == nil { try? await Task.sleep(for: .milliseconds(5)) }
        return exitCode ?? 137
    }

    /// Synchronous kill for shutdown paths that cannot await (the process group, at once).
    func killNow() {
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }
}
