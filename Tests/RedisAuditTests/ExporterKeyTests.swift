import Findings
import Foundation
import Testing

import RESP
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

/// A reply no Redis sends, from a broken server or proxy: the check must fail on it, not vanish from the report.
@Suite("the audit's hash check against malformed replies")
struct MalformedHashReplyTests {
    @Test("an HGETALL reply with an odd number of elements fails redis.hash.missing-field, naming the key and the count")
    func oddHashReply() throws {
        var state = AuditState(options: RedisAuditOptions(ttlSeconds: 300))
        let key = Array("gunicorn:counter:4242:metric:\(String(repeating: "a", count: 32))".utf8)
        let layout = CompactKey.parse(key, prefix: Array("gunicorn:".utf8))
        try state.record(key: key, layout: layout, type: .simpleString("hash"), pttl: .integer(200_000),
                         hash: .array([.bulkString(Array("value".utf8)), .bulkString(Array("1".utf8)), .bulkString(Array("timestamp".utf8))]),
                         address: "127.0.0.1:6379")
        state.finish()
        let check = try #require(state.findings().first { $0.checkID == AuditCheck.hashMissingField })
        #expect(check.status == .fail)
        #expect(check.observed?.contains("(HGETALL answered 3 elements, not field/value pairs)") == true, "\(check)")
    }
}
