import Foundation
import Processes
import Synchronization
import SimFaults
import SimStore

#if canImport(Glibc)
import Glibc
#endif

/// One running container: a real process in a process group of its own (so gunicorn's workers go with it), its
/// stdout and stderr appended to the container's log file.
package final class ContainerProcess: Sendable {
    let pid: pid_t
    private let exit = Mutex<Int32?>(nil)

    /// What a spawn needs, resolved: absolute executable, argv, environment, working directory.
    struct Launch {
        var executable: String
        var arguments: [String]
        var environment: [String: String]
        var workingDirectory: String
        var logFile: String
    }

    /// Finds `command` on `PATH` the way a container runtime does (exec with the container's own PATH).
    static func resolve(_ command: String, path: String) -> String? { Spawn.resolve(command, path: path) }

    /// Starts the process, its output appended to the container's log. - Throws: `SimError` with the OS's reason.
    init(_ launch: Launch) throws {
        do {
            pid = try Spawn.start(SpawnRequest(
                command: launch.executable, arguments: launch.arguments, environment: launch.environment,
                workingDirectory: launch.workingDirectory, stdout: .file(path: launch.logFile, append: true)))
        } catch {
            throw SimError(error.description)
        }
    }

    /// The exit code once the process ended (128 + signal when killed), nil while it runs. Never blocks.
    var exitCode: Int32? {
        exit.withLock { code in
            if let code { return code }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                code = Spawn.exitCode(waitStatus: status)
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
