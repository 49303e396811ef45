import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads one file a user named — a kubeconfig, a manifest, a rules file, a token file — or standard input, with the
/// reason in plain words when it cannot: "is a directory", "permission denied", "does not exist", or over the size
/// limit. A named pipe or a device is read like a file, as kubectl reads them (`-f <(helm template …)` is a pipe);
/// it is opened without blocking, so a pipe nobody writes to reads as empty instead of hanging the open.
public enum InputFile {
    /// Why a file could not be read: `reason` completes "FILE …" ("is a directory").
    public struct Unreadable: Error, Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        /// The input had not ended by the caller's deadline (a timeout, not bad input).
        public var timedOut = false
        public var description: String { reason }
    }

    /// The whole content of `path`, at most `limit` bytes (the YAML budget's size limit unless told otherwise).
    public static func read(_ path: String, limit: Int = YAMLBudget.Limits.standard.maxBytes) throws(Unreadable) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Unreadable(reason: openFailure(errno)) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw Unreadable(reason: String(cString: strerror(errno))) }
        switch status.st_mode & S_IFMT {
        case S_IFDIR:
            throw Unreadable(reason: "is a directory")
        case S_IFREG:
            guard Int(status.st_size) <= limit else {
                throw Unreadable(reason: "is \(status.st_size) bytes, more than kverify's limit of \(limit) bytes")
            }
        default:
            // A pipe or a device: its writer may still be producing, so from here reads wait for it.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        }
        return try read(descriptor: fd, limit: limit)
    }

    /// Reads `fd` to its end, at most `limit` bytes (standard input: `-f -`). With a `deadline`, a writer that has not
    /// ended its input by then is an error rather than a wait without end (`sleep 100 | kverify daemonset -f -`).
    public static func read(descriptor fd: Int32, limit: Int = YAMLBudget.Limits.standard.maxBytes,
                            deadline: ContinuousClock.Instant? = nil) throws(Unreadable) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            if let deadline {
                let remaining = deadline - .now
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let (seconds, attoseconds) = remaining.components
                let waited = remaining > .zero ? poll(&ready, 1, Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)) : 0
                if waited < 0, errno == EINTR { continue }
                if waited == 0 { throw Unreadable(reason: "had not ended by the deadline (\(bytes.count) bytes read)", timedOut: true) }
            }
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {  // a descriptor someone left non-blocking: wait for input instead of spinning
                    var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&ready, 1, -1)
                    continue
                }
                throw Unreadable(reason: errno == EISDIR ? "is a directory" : "cannot be read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            guard bytes.count <= limit else { throw Unreadable(reason: "holds more than kverify's limit of \(limit) bytes") }
        }
    }

    static func openFailure(_ code: Int32) -> String {
        switch code {
        case ENOENT: "does not exist"
        case EACCES, EPERM: "cannot be read: permission denied"
        case ENXIO: "is a socket or a device with nothing behind it, not a file"
        case ENOTDIR: "does not exist (a part of its path is not a directory)"
        default: "cannot be opened: \(String(cString: strerror(code)))"
        }
    }
}
