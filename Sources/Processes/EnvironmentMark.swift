import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Finds and kills every process that inherited one environment entry, wherever it went in the process tree.
///
/// A process group does not hold a container: a process that calls `setsid` (a daemonizing script, `setsid cmd &`)
/// leaves its group and, once its parent is gone, every trace of where it came from — except its environment, which
/// every fork and exec inherits unless the program clears it. The sim gives each container start an entry of its own
/// and, when the container ends, kills what still carries it, as a runtime kills a container's whole cgroup.
public struct EnvironmentMark: Sendable, Hashable {
    public static let variable = "KVERIFY_SIM_CONTAINER_ID"

    /// The value, unique to one container start: this process's `owner`, a slash, then a UUID of its own.
    public let value: String

    public init(value: String = Self.owner + "/" + UUID().uuidString) {
        self.value = value
    }

    /// Unique to this process: every mark it hands out starts with it, so `GroupReaper`'s watchdog can find every
    /// carrier after this process died, setsid escapees included.
    public static let owner = UUID().uuidString

    /// The start of every entry this process's marks make in an environment.
    static var ownerEntryPrefix: String { "\(variable)=\(owner)/" }

    /// `NAME=value`, as it appears in `/proc/<pid>/environ`.
    public var entry: String { "\(Self.variable)=\(value)" }

    /// The processes whose environment holds the entry (other users' processes, which cannot be read, are skipped).
    public func carriers() -> [pid_t] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        let needle = Array(entry.utf8)
        let me = getpid()
        var found: [pid_t] = []
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = pid_t(name), pid != me, let environment = Self.read("/proc/\(name)/environ") else { continue }
            if environment.split(separator: 0).contains(where: { $0.elementsEqual(needle) }) { found.append(pid) }
        }
        return found
    }

    /// SIGKILLs every carrier, again while new ones turn up (a carrier may fork between the scan and its kill), at
    /// most three rounds. A killed process keeps its environment until it is gone, so it is not counted again.
    /// Returns the pids killed.
    @discardableResult
    public func killCarriers() -> [pid_t] {
        var killed: [pid_t] = []
        for _ in 0..<3 {
            let carriers = carriers().filter { !killed.contains($0) }
            guard !carriers.isEmpty else { break }
            for pid in carriers { kill(pid, SIGKILL) }
            killed += carriers
        }
        return killed
    }

    /// Whether `pid` exists and is not a zombie (a killed process stays one until its parent reaps it).
    public static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")),
              close + 2 < stat.count else { return false }
        return stat[close + 2] != UInt8(ascii: "Z")
    }

    /// A whole /proc file (they report size 0, so it is read to end-of-file); nil when it cannot be opened.
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }
}
