import Foundation

/// The output formats every command offers with `--output`.
public enum OutputFormat: String, Sendable, CaseIterable {
    case text, json, junit
}

/// Renders a report. Renderers only format findings; they never decide anything. Every format passes the report
/// through `Redaction` first: secrets and control characters never reach the output.
public enum ReportRenderer {
    public static func render(_ report: Report, as format: OutputFormat, verbose: Bool = false) -> String {
        switch format {
        case .text: text(report, verbose: verbose)
        case .json: json(report)
        case .junit: junit(report)
        }
    }

    /// Human-readable: failures and warnings in full, passes counted (listed with `verbose`).
    public static func text(_ report: Report, verbose: Bool = false) -> String {
        let report = Redaction.redact(report)
        var lines: [String] = []
        let shown = report.findings.filter { verbose || $0.status != .pass }
        for finding in shown.sorted(by: { $0.status > $1.status }) {
            lines.append(line(for: finding))
        }
        if !report.phases.isEmpty {
            let phases = report.phases.map { "\($0.name) \(formatSeconds($0.seconds))" }
            lines.append("phases: " + phases.joined(separator: ", "))
        }
        let verdict = switch report.verdict {
        case .pass: "VERIFIED"
        case .warn: "VERIFIED with warnings"
        case .fail: "FAILED"
        }
        lines.append(
            "\(verdict): \(report.target) — \(report.count(.pass)) passed, \(report.count(.warn)) warnings, "
                + "\(report.count(.fail)) failed")
        return lines.joined(separator: "\n") + "\n"
    }

    static func line(for finding: Finding) -> String {
        var text = "\(finding.status.rawValue.uppercased()) \(finding.checkID)"
        if !finding.subject.isEmpty { text += " [\(finding.subject)]" }
        if let expected = finding.expected { text += " expected \(expected)" }
        if let observed = finding.observed { text += (finding.expected == nil ? " observed " : ", observed ") + observed }
        if let detail = finding.detail { text += " — \(detail)" }
        // Multi-line values (a tool's stderr, a server's message) continue indented, so no line a server sent can pass
        // for a finding or the verdict line of the text report.
        return text.replacingOccurrences(of: "\n", with: "\n    ")
    }

    public static func json(_ report: Report) -> String {
        var text = ""
        writeJSON(report) { text += $0 }
        return text
    }

    /// The JSON report handed to `write` a finding at a time: byte for byte what `JSONEncoder` (pretty-printed, keys
    /// sorted) gives for the whole redacted report, without building it whole. A 500-node run's report is ~13 MB,
    /// and encoding it at once (plus the redacted copy of every finding) raised kverify's peak memory by a quarter.
    public static func writeJSON(_ report: Report, to write: (String) -> Void) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, numbers and arrays cannot fail. A pretty-printed value nested one level deeper is
        // the same text with every line after the first indented by two more spaces (strings hold no raw newline;
        // the blank line of an empty array stays blank).
        func encoded<T: Encodable>(_ value: T, depth: Int) -> String {
            let text = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
            let indent = String(repeating: "  ", count: depth)
            return text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                .map { $0.offset == 0 || $0.element.isEmpty ? String($0.element) : indent + $0.element }
                .joined(separator: "\n")
        }
        // The top-level keys in sorted order, as `Report.encode(to:)` names them.
        write("{\n  \"findings\" : ")
        if report.findings.isEmpty {
            write(encoded([Finding](), depth: 1))
        } else {
            write("[\n")
            for (index, finding) in report.findings.enumerated() {
                let separator = index == report.findings.count - 1 ? "\n" : ",\n"
                write("    " + encoded(Redaction.redact(finding), depth: 2) + separator)
            }
            write("  ]")
        }
        write(",\n  \"phases\" : " + encoded(report.phases, depth: 1))
        write(",\n  \"summary\" : " + encoded(report.summary, depth: 1))
        write(",\n  \"target\" : " + encoded(Redaction.redact(report.target), depth: 1))
        write(",\n  \"verdict\" : " + encoded(report.verdict, depth: 1))
        write("\n}\n")
    }

    /// One JUnit testcase per finding: classname is the check, name the subject. Warnings pass with a
    /// `system-out` note so CI dashboards keep them visible without failing the build.
    public static func junit(_ report: Report) -> String {
        let report = Redaction.redact(report)
        let total = report.phases.reduce(0) { $0 + $1.seconds }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites>\n"
        xml += "  <testsuite name=\"\(escape("kverify " + report.target))\" tests=\"\(report.findings.count)\" "
        xml += "failures=\"\(report.count(.fail))\" errors=\"0\" time=\"\(formatSeconds(total, unit: false))\">\n"
        for finding in report.findings {
            let name = finding.subject.isEmpty ? finding.checkID : finding.subject
            xml += "    <testcase classname=\"\(escape(finding.checkID))\" name=\"\(escape(name))\""
            switch finding.status {
            case .pass:
                xml += "/>\n"
            case .warn:
                xml += ">\n      <system-out>\(escape("WARNING: " + line(for: finding)))</system-out>\n    </testcase>\n"
            case .fail:
                let message = [finding.expected.map { "expected \($0)" }, finding.observed.map { "observed \($0)" }]
                    .compactMap { $0 }.joined(separator: ", ")
                xml += ">\n      <failure message=\"\(escape(message))\">\(escape(line(for: finding)))</failure>\n"
                xml += "    </testcase>\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            // XML 1.0 forbids most control characters even when escaped.
            case _ where scalar.value < 0x20 && scalar != "\n" && scalar != "\t" && scalar != "\r":
                out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func formatSeconds(_ seconds: Double, unit: Bool = true) -> String {
        String(format: "%.3f", seconds) + (unit ? "s" : "")
    }
}
