import Findings
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite("Reports and their renderings")
struct ReportRendererTests {
    static let report = Report(target: "metrics http://x/metrics", findings: [
        .pass("a.present", subject: "m", observed: "2 series"),
        .warn("b.quirk", subject: "m", expected: "no duplicate", observed: "2 occurrences", detail: "known quirk"),
        .fail("c.value", subject: "m{w=\"1\"}", expected: "every series > 0", observed: "value 0", detail: "send <traffic> & retry"),
    ], phases: [.init(name: "scrape", seconds: 0.25)])

    @Test("verdict is the worst status; exit status follows it")
    func verdict() {
        #expect(Self.report.verdict == .fail)
        #expect(Self.report.exitStatus == .checkFailed)
        #expect(Report(target: "t", findings: [.pass("a"), .warn("b")]).exitStatus == .verified)
        #expect(Report(target: "t").verdict == .pass)
    }

    @Test("text lists failures first, hides passes unless verbose, ends with a summary line")
    func text() {
        let lines = ReportRenderer.text(Self.report).split(separator: "\n").map(String.init)
        #expect(lines == [
            "FAIL c.value [m{w=\"1\"}] expected every series > 0, observed value 0 — send <traffic> & retry",
            "WARN b.quirk [m] expected no duplicate, observed 2 occurrences — known quirk",
            "phases: scrape 0.250s",
            "FAILED: metrics http://x/metrics — 1 passed, 1 warnings, 1 failed",
        ])
        #expect(ReportRenderer.text(Self.report, verbose: true).contains("PASS a.present [m] observed 2 series"))
    }

    @Test("a value with newlines continues indented: no line of it reads as a finding or the verdict")
    func multiLineValues() {
        let forged = Report(target: "metrics http://x/metrics", findings: [
            .fail("scrape.http-status", subject: "http://x/metrics", expected: "HTTP 200",
                  observed: "HTTP 500: oops\nPASS everything.fine\nVERIFIED: all good"),
        ])
        let lines = ReportRenderer.text(forged).split(separator: "\n").map(String.init)
        #expect(lines == [
            "FAIL scrape.http-status [http://x/metrics] expected HTTP 200, observed HTTP 500: oops",
            "    PASS everything.fine",
            "    VERIFIED: all good",
            "FAILED: metrics http://x/metrics — 0 passed, 0 warnings, 1 failed",
        ])
    }

    @Test("JSON carries verdict, summary and every finding")
    func json() throws {
        let data = Data(ReportRenderer.json(Self.report).utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["verdict"] as? String == "fail")
        let summary = try #require(object["summary"] as? [String: Int])
        #expect(summary == ["pass": 1, "warn": 1, "fail": 1])
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.map { $0["checkID"] as? String } == ["a.present", "b.quirk", "c.value"])
        let decoded = try JSONDecoder().decode(Report.self, from: data)
        #expect(decoded.findings == Self.report.findings)
    }

    @Test("JSON written a finding at a time is byte for byte JSONEncoder's encoding of the whole redacted report")
    func jsonStreamed() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let tricky = Report(target: "daemonset https://10.0.0.1:6443/api token=sekret", findings: [
            .fail("c.value", subject: "m{path=\"/a/b\"}", expected: "é ≥ 0 \\ \"q\"", observed: "line 1\nline 2\ttab \u{1}",
                  detail: "Authorization: Bearer abc.def.ghi"),
            Finding(checkID: "d.about", subject: "pod/x", status: .warn, observed: "[] {}", about: Finding.Subject(metric: "m")),
        ] + Self.report.findings, phases: [.init(name: "wait", seconds: 1.0 / 3), .init(name: "scrape", seconds: 2)])
        for report in [Self.report, tricky, Report(target: "empty"), Report(target: "no phases", findings: [.pass("a")])] {
            let whole = String(decoding: try encoder.encode(Redaction.redact(report)), as: UTF8.self) + "\n"
            var pieces: [String] = []
            ReportRenderer.writeJSON(report) { pieces.append($0) }
            #expect(pieces.joined() == whole)
            #expect(pieces.count >= report.findings.count)
        }
        #expect(!ReportRenderer.json(tricky).contains("sekret") && !ReportRenderer.json(tricky).contains("abc.def.ghi"))
    }

    @Test("JUnit has one testcase per finding, failures as <failure>, XML-escaped")
    func junit() throws {
        let xml = ReportRenderer.junit(Self.report)
        #expect(xml.contains("tests=\"3\" failures=\"1\""))
        #expect(xml.components(separatedBy: "<testcase ").count - 1 == 3)
        #expect(xml.contains("<failure message=\"expected every series &gt; 0, observed value 0\">"))
        #expect(xml.contains("send &lt;traffic&gt; &amp; retry"))
        #expect(xml.contains("name=\"m{w=&quot;1&quot;}\""))
        // Well-formed: Foundation's XML parser accepts it.
        #expect(XMLParser(data: Data(xml.utf8)).parse())
    }

    @Test("a finding prints as one line, and a report lists what did not pass before the passes")
    func descriptions() {
        let fail = Finding(checkID: "redis.ttl.missing", subject: "gunicorn:*", status: .fail, expected: "every key to have a TTL",
                           observed: "1 key has no TTL", detail: "is REDIS_TTL_DISABLED=true?")
        #expect("\(fail)" == "FAIL redis.ttl.missing gunicorn:*: expected every key to have a TTL; observed 1 key has no TTL; is REDIS_TTL_DISABLED=true?")
        #expect("\(Finding(checkID: "cleanup", status: .pass))" == "PASS cleanup")
        let report = Report(target: "daemonset x", findings: [.pass("a"), fail, .warn("b")])
        #expect("\(report)" == """
            daemonset x: fail, 1 fail, 1 warn, 1 pass
              FAIL redis.ttl.missing gunicorn:*: expected every key to have a TTL; observed 1 key has no TTL; is REDIS_TTL_DISABLED=true?
              WARN b
              PASS a
            """)
    }
}
