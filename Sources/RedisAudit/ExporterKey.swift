/// One key of the Gunicorn Prometheus Exporter's Redis layout: `{prefix}:{type}:{pid}:{metric|meta}:{md5}`.
///
/// `metric` keys are hashes with `value`, `timestamp`, `updated_at`; each has a `meta` twin (hash with
/// `original_key`, `created_at`, `typ`, `multiprocess_mode`) that differs only in that one segment.
public struct ExporterKey: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case metric, meta

        var other: Kind { self == .metric ? .meta : .metric }
    }

    /// `counter`, `histogram`, `summary`, `gauge` or `gauge_<multiprocess mode>` (in practice `gauge_all`).
    public var type: String
    /// The worker (or master) process that wrote the key.
    public var pid: Int
    public var kind: Kind
    /// MD5 (32 lowercase hex digits) of the metric's identity.
    public var hash: String

    public init(type: String, pid: Int, kind: Kind, hash: String) {
        self.type = type
        self.pid = pid
        self.kind = kind
        self.hash = hash
    }

    /// The metric family a type belongs to: `gauge_all` → `gauge`.
    public var family: String { type.hasPrefix("gauge_") ? "gauge" : type }

    /// The full key under `prefix`.
    public func key(prefix: String) -> String { "\(prefix):\(type):\(pid):\(kind.rawValue):\(hash)" }

    /// The twin's full key: the `meta` key of a `metric` key and vice versa.
    public func twinKey(prefix: String) -> String {
        ExporterKey(type: type, pid: pid, kind: kind.other, hash: hash).key(prefix: prefix)
    }

    /// Types the exporter writes: prometheus_client's metric types, gauges suffixed with their multiprocess mode.
    public static let knownTypes: Set<String> = Set(
        ["counter", "histogram", "summary", "gauge"]
            + ["all", "liveall", "live", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"]
            .map { "gauge_\($0)" })

    /// Parses a key found under `prefix:`.
    /// - Returns: the key, or why it does not follow the layout (in words for a warning).
    public static func parse(_ key: some Collection<UInt8>, prefix: String) -> Result<ExporterKey, LayoutViolation> {
        let prefixBytes = Array(prefix.utf8) + [UInt8(ascii: ":")]
        guard key.starts(with: prefixBytes) else {
            return .failure(LayoutViolation("does not start with '\(prefix):'"))
        }
        let parts = key.dropFirst(prefixBytes.count).split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard parts.count == 4 else {
            return .failure(LayoutViolation(
                "has \(parts.count) segment\(parts.count == 1 ? "" : "s") after the prefix, expected 4 ({type}:{pid}:{metric|meta}:{md5})"))
        }
        let type = String(decoding: parts[0], as: UTF8.self)
        guard knownTypes.contains(type) else {
            return .failure(LayoutViolation("type '\(type)' is not one of counter, histogram, summary, gauge_<mode>"))
        }
        guard !parts[1].isEmpty, parts[1].count <= 10, parts[1].allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let pid = Int(String(decoding: parts[1], as: UTF8.self)), pid > 0
        else {
            return .failure(LayoutViolation("pid '\(String(decoding: parts[1], as: UTF8.self))' is not a process id"))
        }
        let kindText = String(decoding: parts[2], as: UTF8.self)
        guard let kind = Kind(rawValue: kindText) else {
            return .failure(LayoutViolation("segment '\(kindText)' is neither 'metric' nor 'meta'"))
        }
        let hash = parts[3]
        guard hash.count == 32, hash.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            return .failure(LayoutViolation("'\(String(decoding: hash, as: UTF8.self))' is not an MD5 hex digest"))
        }
        return .success(ExporterKey(type: type, pid: pid, kind: kind, hash: String(decoding: hash, as: UTF8.self)))
    }
}

/// Why a key under the prefix does not follow the exporter's layout.
public struct LayoutViolation: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
