import Findings
import Foundation
import Testing

@Suite("Redaction: no secret or control character reaches the output")
struct RedactionTests {
    @Test("secrets are replaced, the text around them kept", arguments: [
        ("GET https://admin:hunter2@10.0.0.1:6443/version", "GET https://admin:REDACTED@10.0.0.1:6443/version"),
        ("http://user:p%40ss@host/metrics", "http://user:REDACTED@host/metrics"),
        ("Unauthorized: Authorization: Bearer abc.def-123 refused", "Unauthorized: Authorization: Bearer REDACTED refused"),
        ("header map[Authorization:[Bearer abc123]]", "header map[Authorization:[Bearer REDACTED]]"),
        ("\"authorization\": \"Basic dXNlcjpwdw==\"", "\"authorization\": \"Basic REDACTED\""),
        ("invalid bearer s3cr3t-t0ken", "invalid bearer REDACTED"),
        ("login with password=hunter2&user=x", "login with password=REDACTED&user=x"),
        ("{\"token\": \"abc\"}", "{\"token\": \"REDACTED\"}"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here", "jwt REDACTED here"),
    ])
    func secrets(input: String, expected: String) {
        #expect(Redaction.redact(input) == expected)
    }

    @Test("names that only mention a secret are left alone", arguments: [
        "--password-env REDIS_PASSWORD: environment variable REDIS_PASSWORD is not set",
        "tokenFile /var/run/token is empty",
        "https://example.com:6443/api/v1/namespaces",
        "redis://host:6379",
    ])
    func nonSecrets(input: String) {
        #expect(Redaction.redact(input) == input)
    }

    @Test("control characters are escaped visibly; newline and tab stay")
    func controlCharacters() {
        #expect(Redaction.redact("gunicorn:\u{1B}[31mred\u{07}\r\u{7F}\u{9B}x") == "gunicorn:\\x1b[31mred\\x07\\x0d\\x7f\\x9bx")
        #expect(Redaction.redact("a\tb\nc") == "a\tb\nc")
    }

    @Test("redaction is idempotent")
    func idempotent() {
        let once = Redaction.redact("https://u:pw@h/ Authorization: Bearer t password: x \u{1B}")
        #expect(Redaction.redact(once) == once)
    }

    @Test("every format renders the report redacted", arguments: OutputFormat.allCases)
    func renderers(format: OutputFormat) {
        let report = Report(target: "metrics http://user:hunter2pw@127.0.0.1:9/metrics", findings: [
            .fail("redis.ttl.missing", subject: "gunicorn:\u{1B}]0;pwned\u{07}", expected: "a TTL",
                  observed: "Status: Authorization: Bearer tok-3f9a2c", detail: "retry with password=hunter2pw"),
        ])
        let output = ReportRenderer.render(report, as: format, verbose: true)
        for secret in ["hunter2pw", "tok-3f9a2c", "\u{1B}", "\u{07}"] {
            #expect(!output.contains(secret), "\(format) output carries \(secret.debugDescription): \(output)")
        }
        #expect(output.contains("user:REDACTED@127.0.0.1"))
        // JSON escapes the backslash of the visible escape.
        #expect(output.contains(format == .json ? "gunicorn:\\\\x1b]0;pwned\\\\x07" : "gunicorn:\\x1b]0;pwned\\x07"), "\(output)")
    }

    @Test("KVerifyError messages (the stderr path) are redacted when made and when changed")
    func errorMessages() {
        var error = KVerifyError(.unreachable, "GET https://a:secretpw@h/: 401 Authorization: Bearer tok123")
        #expect(error.message == "GET https://a:REDACTED@h/: 401 Authorization: Bearer REDACTED")
        error.message = "key \u{1B}[2J"
        #expect(error.description == "key \\x1b[2J")
    }
}
