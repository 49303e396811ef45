import ArgumentParser
import Findings
import Foundation

extension OutputFormat: ExpressibleByArgument {}

/// `--output`, `--quiet`, `--verbose`: shared by every command that prints a report.
struct OutputOptions: ParsableArguments {
    @Option(help: "Report format: text, json or junit (one testcase per check and subject).")
    var output: OutputFormat = .text

    @Flag(help: "Text output: print only the verdict line.")
    var quiet = false

    @Flag(help: "Text output: list passing checks too.")
    var verbose = false

    /// Prints the report on stdout and ends the command with `exitStatus` (by default the report's own).
    func finish(_ report: Report, exitStatus: ExitStatus? = nil) throws {
        print(report)
        let status = exitStatus ?? report.exitStatus
        if status != .verified { throw ExitCode(status.rawValue) }
    }

    /// Prints the report on stdout in the chosen format. JSON goes out in pieces of about 64 KiB, never whole.
    func print(_ report: Report) {
        if output == .json {
            var pending = ""
            ReportRenderer.writeJSON(report) { piece in
                pending += piece
                if pending.utf8.count >= 1 << 16 {
                    FileHandle.standardOutput.write(Data(pending.utf8))
                    pending = ""
                }
            }
            FileHandle.standardOutput.write(Data(pending.utf8))
            return
        }
        var rendered = ReportRenderer.render(report, as: output, verbose: verbose)
        if quiet && output == .text, let verdict = rendered.split(separator: "\n").last {
            rendered = verdict + "\n"
        }
        FileHandle.standardOutput.write(Data(rendered.utf8))
    }
}

/// A duration given on the command line: `500ms`, `10s`, `2m`, `1h`, or plain seconds (`1.5`), from 1 ns up to
/// `maximum` (7 days). The one parser for every duration option: the bound keeps deadlines, nanoseconds and
/// the milliseconds handed to poll(2) and libcurl (an Int32 holds 24.8 days of them) from overflowing, and a
/// fraction of a millisecond stays a positive duration instead of rounding to 0 (libcurl's "no limit").
struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    static let maximum = Duration.seconds(7 * 24 * 3600)

    var duration: Duration
    private let text: String

    init(_ duration: Duration, text: String) {
        self.duration = duration
        self.text = text
    }

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(argument)
        var scale = 1.0
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            number = argument.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value.isFinite, value > 0 else { return nil }
        let seconds = value * scale
        guard seconds <= Double(Self.maximum.components.seconds) else { return nil }
        self.init(.nanoseconds(Int64((seconds * 1e9).rounded(.up))), text: argument)
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}
