import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The temporary state directories sims create (`$TMPDIR/kverify-sim-*`), each marked with its owner, so a sim
/// that died without `stop()` (SIGKILL) leaves nothing behind for longer than the next sim's start.
enum StateDirectory {
    static let prefix = "kverify-sim-"
    /// "kverify-sim PID STARTTIME": the owner's pid and its start time (field 22 of /proc/PID/stat), so a pid reused
    /// by another process does not keep a dead sim's state alive.
    static let ownerFile = "owner"

    static func markOwned(_ directory: URL) throws {
        let pid = getpid()
        try Data("kverify-sim \(pid) \(startTime(of: pid) ?? "?")\n".utf8)
            .write(to: directory.appendingPathComponent(ownerFile))
    }

    /// Removes the state directories under `parent` whose owner file is kverify's and whose owner no longer runs.
    /// A directory without an owner file (not verifiably kverify's, or just being created) is left alone.
    /// - Returns: the directories removed.
    @discardableResult
    static func removeStale(in parent: URL = FileManager.default.temporaryDirectory) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        var removed: [URL] = []
        for name in names where name.hasPrefix(prefix) {
            let directory = parent.appendingPathComponent(name)
            guard let text = try? String(contentsOf: directory.appendingPathComponent(ownerFile), encoding: .utf8) else { continue }
            let fields = text.split(whereSeparator: \.isWhitespace).map(String.init)
            guard fields.count == 3, fields[0] == "kverify-sim", let pid = Int32(fields[1]), pid > 0 else { continue }
            let running = kill(pid, 0) == 0 || errno == EPERM
            if running && startTime(of: pid) == fields[2] { continue }
            if (try? FileManager.default.removeItem(at: directory)) != nil { removed.append(directory) }
        }
        return removed
    }

    /// A process's start time in clock ticks since boot; nil when it does not run.
    static func startTime(of pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let end = stat.range(of: ") ", options: .backwards) else { return nil }
        // After the command's ")": field 3 (state) onwards; the start time is field 22.
        let fields = stat[end.upperBound...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
