import Foundation
import KVerifyTestSupport
import Processes
import Testing

/// Rules every script under scripts/ follows: shellcheck-clean, strict mode, a --help that needs no tools.
@Suite struct ScriptHygieneTests {
    static let scriptsDirectory = RepositoryPaths.root.appendingPathComponent("scripts")

    /// Every shell file under scripts/, lib/ included, as paths relative to scripts/.
    static func shellFiles() throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(atPath: scriptsDirectory.path))
        return enumerator.compactMap { $0 as? String }.filter { $0.hasSuffix(".sh") }.sorted()
    }

    /// The runnable scripts (not the sourced libraries).
    static let executables = ["setup.sh", "setup-kind.sh", "setup-k3d.sh", "health-check.sh", "teardown.sh", "bootstrap.sh", "demo.sh", "fuzz.sh"]

    @Test(arguments: executables)
    func helpExitsZeroWithoutAnyTool(script: String) async throws {
        try await FakeToolbox.with(tools: []) { box in
            let result = try await box.run(script, ["--help"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stdout.hasPrefix("Usage: scripts/\(script)"), "stdout: \(result.stdout)")
        }
    }

    @Test func everyExecutableScriptIsListedAndUsesStrictMode() async throws {
        let topLevel = try Self.shellFiles().filter { !$0.contains("/") }
        #expect(Set(topLevel) == Set(Self.executables), "update `executables` when adding a script")
        for script in topLevel {
            let url = Self.scriptsDirectory.appendingPathComponent(script)
            let text = try String(contentsOf: url, encoding: .utf8)
            #expect(text.hasPrefix("#!/usr/bin/env bash\n"), "\(script): shebang")
            #expect(text.contains("\nset -euo pipefail\n"), "\(script): set -euo pipefail")
            #expect(FileManager.default.isExecutableFile(atPath: url.path), "\(script) is not executable")
        }
    }

    @Test func noScriptDownloadsAnything() async throws {
        for file in try Self.shellFiles() {
            let text = try String(contentsOf: Self.scriptsDirectory.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
                for command in ["curl ", "wget ", "go install", "brew install"] where line.contains(command) {
                    // Install hints mention these inside quoted messages; a command line would start with them.
                    let code = line.trimmingCharacters(in: .whitespaces)
                    #expect(!code.hasPrefix(command), "\(file) runs \(command): \(line)")
                }
            }
        }
    }

    @Test func shellcheckFindsNothing() async throws {
        let shellcheck = try #require(["/usr/bin/shellcheck", "/usr/local/bin/shellcheck"]
            .first(where: FileManager.default.isExecutableFile(atPath:)),
            "shellcheck is not installed: run scripts/bootstrap.sh --no-build")
        let files = try Self.shellFiles()
        try #require(files.count >= 9, "found only \(files)")
        let result = try await ProcessRunner.run(
            shellcheck, arguments: ["--format=gcc"] + files, environment: ProcessInfo.processInfo.environment, timeout: .seconds(300),
            workingDirectory: Self.scriptsDirectory.path)
        let output = String(decoding: result.stdout + result.stderr, as: UTF8.self)
        #expect(result.succeeded && output.isEmpty, "shellcheck findings:\n\(output)")
    }
}
