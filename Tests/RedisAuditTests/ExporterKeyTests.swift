import Foundation
import Testing

@testable import RedisAudit

@Suite("Exporter key layout")
struct ExporterKeyTests {
    static let hash = "0123456789abcdef0123456789abcdef"

    @Test("keys the exporter writes parse into type, pid, kind and hash", arguments: [
        ("gunicorn:counter:4242:metric:\(hash)", "gunicorn", "counter", 4242, ExporterKey.Kind.metric),
        ("gunicorn:gauge_all:7:meta:\(hash)", "gunicorn", "gauge_all", 7, .meta),
        ("gunicorn-daemonset:histogram:1:metric:\(hash)", "gunicorn-daemonset", "histogram", 1, .metric),
        ("app:gunicorn:gauge_liveall:99:meta:\(hash)", "app:gunicorn", "gauge_liveall", 99, .meta),
    ])
    func parses(_ key: String, prefix: String, type: String, pid: Int, kind: ExporterKey.Kind) throws {
        let parsed = try ExporterKey.parse(Array(key.utf8), prefix: prefix).get()
        #expect(parsed == ExporterKey(type: type, pid: pid, kind: kind, hash: Self.hash))
        #expect(parsed.key(prefix: prefix) == key)
        let twin = parsed.twinKey(prefix: prefix)
        #expect(twin == key.replacingOccurrences(of: ":\(kind.rawValue):", with: kind == .metric ? ":meta:" : ":metric:"))
    }

    @Test("keys of another shape name what is wrong", arguments: [
        ("gunicorn:weird", "has 1 segment after the prefix, expected 4"),
        ("gunicorn:counter:1:metric:\(hash):extra", "has 5 segments"),
        ("gunicorn:timer:1:metric:\(hash)", "type 'timer' is not one of"),
        ("gunicorn:counter:abc:metric:\(hash)", "pid 'abc' is not a process id"),
        ("gunicorn:counter:0:metric:\(hash)", "pid '0' is not a process id"),
        ("gunicorn:counter:1:data:\(hash)", "segment 'data' is neither 'metric' nor 'meta'"),
        ("gunicorn:counter:1:metric:XYZ", "'XYZ' is not an MD5 hex digest"),
        ("gunicorn:counter:1:metric:0123456789ABCDEF0123456789ABCDEF", "is not an MD5 hex digest"),
        ("other:counter:1:metric:\(hash)", "does not start with 'gunicorn:'"),
    ])
    func rejects(_ key: String, reason: String) {
        guard case .failure(let violation) = ExporterKey.parse(Array(key.utf8), prefix: "gunicorn") else {
            Issue.record("\(key) parsed")
            return
        }
        #expect(violation.description.contains(reason), "\(violation)")
    }

    @Test("the SCAN pattern escapes glob characters and a trailing colon is dropped", arguments: [
        ("gunicorn", "gunicorn:*"),
        ("gunicorn:", "gunicorn:*"),
        ("a*b?[c]\\", "a\\*b\\?\\[c\\]\\\\:*"),
    ])
    func matchPattern(_ prefix: String, pattern: String) {
        #expect(RedisAuditOptions(prefix: prefix).matchPattern == pattern)
    }
}
