#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
    public static let knownTypes: Set<String> = Set(typeNames)

    /// `knownTypes` in a fixed order; `CompactKey.PairID.typeIndex` indexes it.
    static let typeNames: [String] =
        ["counter", "histogram", "summary", "gauge"]
        + ["all", "liveall", "live", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"]
        .map { "gauge_\($0)" }
    private static let typeBytes: [[UInt8]] = typeNames.map { Array($0.utf8) }

    /// Parses a key found under `prefix:`.
    /// - Returns: the key, or why it does not follow the layout (in words for a warning).
    public static func parse(_ key: [UInt8], prefix: String) -> Result<ExporterKey, LayoutViolation> {
        CompactKey.parse(key, prefix: Array(prefix.utf8) + [UInt8(ascii: ":")]).map(\.expanded)
    }

    /// The position of `bytes` in `typeNames`.
    static func typeIndex(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt8? {
        for index in typeBytes.indices where typeBytes[index].count == bytes.count {
            let matches = typeBytes[index].withUnsafeBufferPointer { name in
                for offset in 0..<name.count where name[offset] != bytes[offset] { return false }
                return true
            }
            if matches { return UInt8(index) }
        }
        return nil
    }
}

/// An exporter key in the allocation-free form the audit streams through: the type as an index, the MD5 as two
/// integers. Parsing touches each byte once and allocates only to describe a violation.
struct CompactKey: Sendable, Hashable {
    /// What a metric key and its meta twin share.
    struct PairID: Sendable, Hashable {
        var typeIndex: UInt8
        var pid: Int
        var hashHigh: UInt64
        var hashLow: UInt64

        /// The MD5 is already uniform: one word of it, mixed with the rest, feeds the hasher once instead of four
        /// times (this runs for every key of the audit).
        func hash(into hasher: inout Hasher) {
            hasher.combine(hashLow ^ (hashHigh &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(typeIndex) << 56 ^ UInt64(truncatingIfNeeded: pid))
        }
    }

    var pair: PairID
    var kind: ExporterKey.Kind

    var expanded: ExporterKey {
        ExporterKey(type: ExporterKey.typeNames[Int(pair.typeIndex)], pid: pair.pid, kind: kind, hash: hashText)
    }

    var hashText: String { Self.hex(pair.hashHigh) + Self.hex(pair.hashLow) }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Parses `{prefix}{type}:{pid}:{metric|meta}:{md5}`; `prefix` includes its trailing colon.
    static func parse(_ key: [UInt8], prefix: [UInt8]) -> Result<CompactKey, LayoutViolation> {
        key.withUnsafeBufferPointer { bytes in
            prefix.withUnsafeBufferPointer { prefixBytes in parse(bytes, prefix: prefixBytes) }
        }
    }

    /// The same on raw bytes: every key of the audit passes here, so it touches each byte once, compares with
    /// `memcmp`-style loops instead of generic collection algorithms, and allocates only to describe a violation.
    static func parse(_ key: UnsafeBufferPointer<UInt8>, prefix: UnsafeBufferPointer<UInt8>) -> Result<CompactKey, LayoutViolation> {
        let colon = UInt8(ascii: ":")
        guard key.count > prefix.count, equal(key, from: 0, prefix) else {
            let shown = String(decoding: prefix.dropLast(), as: UTF8.self)
            return .failure(LayoutViolation("does not start with '\(shown):'"))
        }
        // Segment boundaries: the three colons after the prefix.
        var colons = (0, 0, 0)
        var found = 0
        var from = prefix.count
        while let index = firstIndex(of: colon, in: key, from: from) {
            switch found {
            case 0: colons.0 = index
            case 1: colons.1 = index
            case 2: colons.2 = index
            default: break
            }
            found += 1
            from = index + 1
        }
        guard found == 3 else {
            return .failure(LayoutViolation(
                "has \(found + 1) segment\(found == 0 ? "" : "s") after the prefix, expected 4 ({type}:{pid}:{metric|meta}:{md5})"))
        }
        let typeBytes = UnsafeBufferPointer(rebasing: key[prefix.count..<colons.0])
        guard let typeIndex = ExporterKey.typeIndex(typeBytes) else {
            return .failure(LayoutViolation(
                "type '\(String(decoding: typeBytes, as: UTF8.self))' is not one of counter, histogram, summary, gauge_<mode>"))
        }
        let pidBytes = key[(colons.0 + 1)..<colons.1]
        var pid = 0
        if pidBytes.count <= 10 {
            for digit in pidBytes {
                guard digit >= 48, digit <= 57 else {
                    pid = 0
                    break
                }
                pid = pid * 10 + Int(digit - 48)
            }
        }
        guard pid > 0 else {
            return .failure(LayoutViolation("pid '\(String(decoding: pidBytes, as: UTF8.self))' is not a process id"))
        }
        let kindLength = colons.2 - colons.1 - 1
        let kind: ExporterKey.Kind
        if kindLength == 6 && equal(key, from: colons.1 + 1, metricBytes) {
            kind = .metric
        } else if kindLength == 4 && equal(key, from: colons.1 + 1, metaBytes) {
            kind = .meta
        } else {
            let kindBytes = key[(colons.1 + 1)..<colons.2]
            return .failure(LayoutViolation("segment '\(String(decoding: kindBytes, as: UTF8.self))' is neither 'metric' nor 'meta'"))
        }
        let hashStart = colons.2 + 1
        var high: UInt64 = 0
        var low: UInt64 = 0
        var invalid: UInt8 = key.count - hashStart == 32 ? 0 : 0x10
        if invalid == 0, let base = key.baseAddress {
            let digits = base + hashStart
            let table = hexDigitValues
            for offset in 0..<16 {
                let nibble = table[Int(digits[offset])]
                invalid |= nibble
                high = high << 4 | UInt64(nibble & 0x0F)
            }
            for offset in 16..<32 {
                let nibble = table[Int(digits[offset])]
                invalid |= nibble
                low = low << 4 | UInt64(nibble & 0x0F)
            }
        }
        guard invalid & 0x10 == 0 else {
            return .failure(LayoutViolation("'\(String(decoding: key[hashStart...], as: UTF8.self))' is not an MD5 hex digest"))
        }
        return .success(CompactKey(pair: PairID(typeIndex: typeIndex, pid: pid, hashHigh: high, hashLow: low), kind: kind))
    }

    @inline(__always)
    private static func firstIndex(of byte: UInt8, in key: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard start < key.count, let base = key.baseAddress,
            let found = memchr(base + start, Int32(byte), key.count - start)
        else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(base)
    }

    /// Value of each lowercase hex digit; 0x10 marks every other byte.
    private static let hexDigitValues: [UInt8] = (0..<256).map { byte in
        switch byte {
        case 48...57: UInt8(byte - 48)
        case 97...102: UInt8(byte - 87)
        default: 0x10
        }
    }

    private static let metricBytes = Array("metric".utf8)
    private static let metaBytes = Array("meta".utf8)

    /// Whether `key` holds `expected` at `offset` (the caller checked the length).
    @inline(__always)
    private static func equal(_ key: UnsafeBufferPointer<UInt8>, from offset: Int, _ expected: [UInt8]) -> Bool {
        expected.withUnsafeBufferPointer { equal(key, from: offset, $0) }
    }

    @inline(__always)
    private static func equal(_ key: UnsafeBufferPointer<UInt8>, from offset: Int, _ expected: UnsafeBufferPointer<UInt8>) -> Bool {
        guard offset + expected.count <= key.count else { return false }
        for index in 0..<expected.count where key[offset + index] != expected[index] { return false }
        return true
    }
}

/// Why a key under the prefix does not follow the exporter's layout.
public struct LayoutViolation: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
