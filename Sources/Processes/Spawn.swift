import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What to start, and where its standard streams go.
public struct SpawnRequest: Sendable {
    public enum Input: Sendable {
        case devNull
        /// A descriptor of the parent's (a pipe's read end), duplicated onto the child's stdin.
        case descriptor(Int32)
    }

    public enum Output: Sendable {
        /// A file, created with mode 0600; `append` keeps what is there (a container's log across restarts).
        case file(path: String, append: Bool)
        /// A descriptor of the parent's (a pipe's write end).
        case descriptor(Int32)
    }

    /// An absolute path, or a name looked up on the *child's* `PATH` (as a shell or container runtime does).
    public var command: String
    public var arguments: [String]
    /// The child's complete environment.
    public var environment: [String: String]
    public var workingDirectory: String?
    public var stdin: Input
    public var stdout: Output
    /// nil: stderr goes where stdout goes.
    public var stderr: Output?

    public init(command: String, arguments: [String] = [], environment: [String: String], workingDirectory: String? = nil,
                stdin: Input = .devNull, stdout: Output, stderr: Output? = nil) {
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A process that could not be started: which command, and the OS's reason.
public struct SpawnError: Error, Sendable, CustomStringConvertible {
    public var command: String
    public var reason: String
    public var errorNumber: Int32

    public var description: String { "cannot start \(command): \(reason)" }
}

/// The one way kverify starts a child process — sim pods, exec plugins, kubectl, helm, test fixtures:
/// `posix_spawn` into a process group of its own (so a stop reaches its children, e.g. gunicorn's workers), with
/// a cleared signal mask and default dispositions (a child must not inherit a blocked SIGTERM and ignore it,
/// as Foundation's `Process` allows), and no descriptor of the parent's beyond its three streams.
public enum Spawn {
    /// Once a process-group leader has exited: kills what is left of its group, reaps the leader and has the watchdog
    /// forget the group. The exit code (128 + signal when killed), nil while the leader runs, 255 when it cannot be
    /// waited for. Never blocks. It peeks first (WNOWAIT): while the exited leader is not reaped its id cannot be
    /// reused, so the group kill reaches only its own leftovers (a forked worker, a shell's background child), as a
    /// container's cgroup would. With `killingLeftovers` false the group's other processes are left running (an exec
    /// session's background jobs, which on a real node live on in the container).
    public static func reapExitedGroup(leader pid: pid_t, killingLeftovers: Bool = true) -> Int32? {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return errno == ECHILD ? 255 : nil }
        guard info._sifields._sigchld.si_pid == pid else { return nil }
        if killingLeftovers { kill(-pid, SIGKILL) }
        var status: Int32 = 0
        let code = waitpid(pid, &status, 0) == pid ? exitCode(waitStatus: status) : 255
        // The group is empty now and its id free for reuse: the watchdog must not kill it any more.
        GroupReaper.forget(pid)
        return code
    }

    /// Starts the process and returns its pid (also its process group id).
    /// - Throws: `SpawnError` when the command is not found or not executable, or posix_spawn fails.
    public static func start(_ request: SpawnRequest) throws(SpawnError) -> pid_t {
        let path = request.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        guard let executable = resolve(request.command, path: path) else {
            throw SpawnError(command: request.command, reason: "executable file not found in $PATH (\(path))", errorNumber: ENOENT)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
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
        switch request.stdin {
        case .devNull: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, 0)
        }
        addOutput(request.stdout, to: 1, &actions)
        if let stderr = request.stderr { addOutput(stderr, to: 2, &actions) } else { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
        // Nothing else of the parent's (listening sockets, API connections, other pipes) may leak into the child.
        if let closeFrom { _ = closeFrom(&actions, 3) }

        // glibc's addchdir_np is not visible to Swift; coreutils' `env -C` changes directory, then execs.
        var command = [executable] + request.arguments
        if let directory = request.workingDirectory { command = ["/usr/bin/env", "-C", directory] + command }
        let argv = command.map { strdup($0) } + [nil]
        let envp = request.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var result: Int32 = 0
        // ETXTBSY: a script written a moment ago may still be open for writing in a child that another thread
        // forked meanwhile (its exec closes it). Retry briefly, as shells do.
        for attempt in 0..<50 {
            result = posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
            guard result == ETXTBSY, attempt < 49 else { break }
            usleep(20_000)
        }
        guard result == 0 else {
            throw SpawnError(command: request.command, reason: String(cString: strerror(result)), errorNumber: result)
        }
        return pid
    }

    /// Finds `command` on `path` (a `PATH` value); a command with a slash is taken as it is.
    public static func resolve(_ command: String, path: String) -> String? {
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

    /// The exit code a wait status means: the code of a normal exit, 128 + the signal of a killed process (as
    /// shells and the kubelet report it). The C macros (WIFEXITED, WEXITSTATUS, WTERMSIG) are not imported.
    public static func exitCode(waitStatus status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Whether a wait status is a normal exit (not a signal).
    public static func exitedNormally(waitStatus status: Int32) -> Bool { status & 0x7f == 0 }

    private static func addOutput(_ output: SpawnRequest.Output, to target: Int32, _ actions: inout posix_spawn_file_actions_t) {
        switch output {
        case .file(let path, let append):
            posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o600)
        case .descriptor(let fd):
            posix_spawn_file_actions_adddup2(&actions, fd, target)
        }
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does not declare.
    private static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }
}
