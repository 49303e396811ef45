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
        var rendered = ReportRenderer.render(report, as: output, verbose: verbose)
        if quiet && output == .text, let verdict = rendered.split(separator: "\n").last {
            rendered = verdict + "\n"
        }
        FileHandle.standardOutput.write(Data(rendered.utf8))
        let status = exitStatus ?? report.exitStatus
        if status != .verified { throw ExitCode(status.rawValue) }
    }
}

/// A duration given on the command line: `500ms`, `10s`, `2m`, `1h`, or plain seconds (`1.5`).
struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
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
        self.init(.milliseconds(Int64((value * scale * 1000).rounded())), text: argument)
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}
