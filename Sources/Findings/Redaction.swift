import Foundation

/// What kverify prints passes through here, once, where it is rendered (`ReportRenderer`, `KVerifyError`):
/// secrets that reached a message from elsewhere (an API server echoing the Authorization header, a URL with a
/// password, a kubeconfig value) are replaced by `REDACTED`, and control characters from untrusted names (a Redis
/// key, a pod log) are escaped visibly (`\x1b`), so no input can drive the terminal or forge an output line
/// other than by a plain newline.
public enum Redaction {
    public static let placeholder = "REDACTED"

    /// `text` with secrets replaced and control characters other than newline and tab escaped.
    public static func redact(_ text: String) -> String {
        guard !text.isEmpty else { return text }
        var out = escapeControlCharacters(text)
        // Most lines (every passing check of a verbose report) mention no secret at all: skip the expressions.
        let lower = out.lowercased()
        guard triggers.contains(where: lower.contains) else { return out }
        for (pattern, template) in rules {
            let range = NSRange(out.startIndex..., in: out)
            out = pattern.stringByReplacingMatches(in: out, range: range, withTemplate: template)
        }
        return out
    }

    /// The report with every string a user can see redacted.
    public static func redact(_ report: Report) -> Report {
        var copy = report
        copy.target = redact(report.target)
        copy.findings = report.findings.map(redact)
        return copy
    }

    public static func redact(_ finding: Finding) -> Finding {
        var redacted = finding
        redacted.checkID = redact(finding.checkID)
        redacted.subject = redact(finding.subject)
        redacted.expected = finding.expected.map(redact)
        redacted.observed = finding.observed.map(redact)
        redacted.detail = finding.detail.map(redact)
        return redacted
    }

    /// C0 controls (but newline and tab), DEL and C1 controls as `\xNN`; a backslash stays a backslash.
    public static func escapeControlCharacters(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isEscaped) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if isEscaped(scalar) {
                out += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isEscaped(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: false
        case 0x00..<0x20, 0x7F..<0xA0: true
        default: false
        }
    }

    /// A word every rule below needs to match (lower-cased).
    private static let triggers = ["://", "authorization", "bearer", "pass", "pwd", "token", "secret", "key-data", "eyj"]

    // Order matters: the Authorization rule runs before the generic bearer rule so "Authorization: Bearer x"
    // keeps its scheme and loses only the credential.
    private static let rules: [(NSRegularExpression, String)] = [
        // https://user:password@host → https://user:REDACTED@host (as Go's url.Redacted, which kubectl uses).
        (#"([A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*):[^/@\s]*@"#, "$1:\(placeholder)@"),
        // Authorization: Bearer x / Basic x / x — also as a JSON or Go-printed header map entry.
        (#"(?i)(authorization["'\]]?\s*[:=]\s*\[?["']?)(bearer\s+|basic\s+)?[^\s"',;\]]+"#, "$1$2\(placeholder)"),
        (#"(?i)\b(bearer\s+)(?!REDACTED)[A-Za-z0-9\-._~+/]+=*"#, "$1\(placeholder)"),
        // password=x, "token": "x", secret: x (but not a name such as --password-env or tokenFile).
        (#"(?i)\b(password|passwd|pwd|token|secret|client-key-data)(["']?\s*[:=]\s*["']?)(?!REDACTED)[^\s"'&,;}]+"#,
         "$1$2\(placeholder)"),
        // A JSON Web Token (service account tokens are JWTs) wherever it appears.
        (#"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"#, placeholder),
    ].map { pattern, template in
        // The patterns are constants: a failure to compile is a programming error caught by the tests.
        (try! NSRegularExpression(pattern: pattern), template)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
