#if canImport(Glibc)
import Glibc
private let openFiles = Int32(RLIMIT_NOFILE.rawValue)
#elseif canImport(Darwin)
import Darwin
private let openFiles = RLIMIT_NOFILE
#endif

/// The process's open-file limit.
public enum FileLimit {
    /// Raises the soft limit on open files to the hard limit, as every Go program does at start since Go 1.19
    /// (kube-apiserver among them): a sim serving hundreds of pods holds their listeners and the proxy's kept-alive
    /// connections, beyond the common soft default of 1,024. Returns the soft limit now in force.
    @discardableResult
    public static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(openFiles, &limit) == 0 else { return -1 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(openFiles, &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
