import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Process groups that must not outlive this process, however it ends — `kill -9` included: the sim's pods.
///
/// A watchdog child (`/bin/sh`, in a process group of its own) reads "+PGID"/"-PGID" lines from a socket whose
/// other end only this process holds. When this process dies for any reason the kernel closes that end, the
/// watchdog reads end-of-file and SIGKILLs every group still registered, then every process whose environment
/// carries one of this process's `EnvironmentMark`s: those that left their group with `setsid`.
///
/// Why not `PR_SET_PDEATHSIG` in each pod: it fires when the *thread* that spawned the child exits (Swift's
/// cooperative pool and NIO threads come and go), so healthy pods would die at random; and it reaches only the
/// direct child, not gunicorn's forked workers. Why not a reaper at the next start: pods would keep serving until
/// then, and nothing guarantees a next start.
public enum GroupReaper {
    private struct State {
        /// Our end of the watchdog's socket; nil before the first `track` or when the watchdog could not start.
        var socket: Int32?
        var started = false
    }

    private static let state = Mutex(State())

    /// The watchdog: ignores the terminal's hangup and Ctrl-C (they are ours to handle); a "-PGID" removes a group
    /// whose processes have been reaped, so a reused id is never killed. `$1` is the start of this process's
    /// marks' environment entry; the carriers are looked for three times, as a carrier may fork between a scan and
    /// its kill (a killed process's environ reads empty, so it is not found again).
    static let script = """
        trap '' HUP INT
        live=' '
        while read -r line; do
          case $line in
            +*) live="$live${line#+} " ;;
            -*) pg=${line#-}; case $live in *" $pg "*) live="${live%% $pg *} ${live#* $pg }" ;; esac ;;
          esac
        done
        for pg in $live; do kill -s KILL -- "-$pg" 2>/dev/null; done
        for round in 1 2 3; do
          found=$(grep -l -s -a -z -F -e "$1" /proc/[0-9]*/environ)
          [ -n "$found" ] || break
          for file in $found; do pid=${file#/proc/}; kill -s KILL "${pid%/environ}" 2>/dev/null; done
        done
        """

    /// Registers a process group (a pid started by `Spawn.start`, which is its own group's id) to be killed if this
    /// process dies before `forget` is called for it. Best effort: when the watchdog cannot start, nothing is tracked.
    public static func track(_ group: pid_t) { send("+\(group)\n") }

    /// The group's processes are gone (killed and reaped): its id may be reused and must not be killed any more.
    public static func forget(_ group: pid_t) { send("-\(group)\n") }

    private static func send(_ line: String) {
        state.withLock { state in
            if !state.started {
                state.started = true
                state.socket = startWatchdog()
            }
            guard let socket = state.socket else { return }
            let bytes = Array(line.utf8)
            // MSG_NOSIGNAL: a watchdog someone killed must not take this process down with SIGPIPE.
            _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    private static func startWatchdog() -> Int32? {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else { return nil }
        defer { close(ends[1]) }
        do {
            _ = try Spawn.start(SpawnRequest(command: "/bin/sh", arguments: ["-c", script, "kverify-group-reaper", EnvironmentMark.ownerEntryPrefix],
                                             environment: ["PATH": "/usr/bin:/bin"], stdin: .descriptor(ends[1]), stdout: .file(path: "/dev/null", append: true)))
        } catch {
            close(ends[0])
            return nil
        }
        return ends[0]
    }
}
