import Foundation
import KVerifyTestSupport
import Processes
import Testing

/// One command a fake tool received.
struct RecordedCall: Equatable, CustomStringConvertible {
    var tool: String
    var arguments: [String]
    /// What the tool read on standard input (only captured for `kind … --config -`).
    var stdin: String?

    var description: String { ([tool] + arguments).joined(separator: " ") }
}

/// How a script run ended.
struct ScriptResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A temporary directory whose `bin/` holds fake `kind`, `k3d`, `docker`, `kubectl` (and, when asked, `kverify`)
/// executables. Scripts run with only `bin/` and `system/` (links to the few system tools they use) on PATH,
/// so the machine's real kubectl and docker CLI stay invisible. Each fake appends its argv to `calls.log`,
/// keeps what `kind` reads on stdin, then runs the test's bash snippet for that tool (default: exit 0, no output).
final class FakeToolbox {
    static let allTools: Set<String> = ["kind", "k3d", "docker", "kubectl"]
    /// What the scripts need from the system besides bash builtins.
    static let systemTools = ["bash", "cat", "date", "dirname", "basename", "grep", "mkdir", "mktemp", "mv", "rm", "sed",
                              "sleep", "tr", "wc", "env"]

    let directory: URL
    var bin: URL { directory.appendingPathComponent("bin") }
    var stateDirectory: URL { directory.appendingPathComponent("state") }
    var callsLog: URL { directory.appendingPathComponent("calls.log") }

    /// Runs `body` with a toolbox holding `tools`, each answering with `responses[tool]` (bash, `$@` = argv).
    /// The directory is removed afterwards, also when `body` throws.
    static func with<T>(
        tools: Set<String> = allTools,
        responses: [String: String] = [:],
        _ body: (FakeToolbox) async throws -> T
    ) async throws -> T {
        let box = try FakeToolbox(tools: tools, responses: responses)
        defer { try? FileManager.default.removeItem(at: box.directory) }
        return try await body(box)
    }

    private init(tools: Set<String>, responses: [String: String]) throws {
        let fm = FileManager.default
        directory = fm.temporaryDirectory.appendingPathComponent("kverify-scripts-\(UUID().uuidString.prefix(8))")
        for sub in ["bin", "system", "respond", "home"] {
            try fm.createDirectory(at: directory.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        for tool in Self.systemTools {
            guard let path = ["/usr/bin/\(tool)", "/bin/\(tool)"].first(where: fm.isExecutableFile(atPath:)) else {
                throw FixtureError("system tool \(tool) not found in /usr/bin or /bin")
            }
            try fm.createSymbolicLink(atPath: directory.appendingPathComponent("system/\(tool)").path,
                                      withDestinationPath: path)
        }
        for tool in tools {
            try install(tool: tool, response: responses[tool] ?? "")
        }
    }

    /// Adds (or replaces) a fake `tool` answering with `response`.
    func install(tool: String, response: String) throws {
        let script = """
            #!/bin/bash
            # Fake \(tool) written by ScriptTests: records its arguments, then answers from respond/\(tool).sh.
            box=$FAKE_BOX
            n=0
            if [[ -f $box/calls.log ]]; then while IFS= read -r _; do n=$((n + 1)); done <"$box/calls.log"; fi
            line=${0##*/}
            for arg in "$@"; do line+=$'\\x1f'"$arg"; done
            printf '%s\\n' "$line" >>"$box/calls.log"
            if [[ ${0##*/} == kind ]]; then
              for arg in "$@"; do if [[ $arg == - ]]; then cat >"$box/stdin-$n"; fi; done
            fi
            source "$box/respond/\(tool).sh"
            exit 0

            """
        let url = bin.appendingPathComponent(tool)
        try Data(script.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        try Data(response.utf8).write(to: directory.appendingPathComponent("respond/\(tool).sh"))
    }

    /// Runs `scripts/<script>` with `arguments`; `KVERIFY_BIN=none` unless `environment` says otherwise. The wait is
    /// on a thread of its own (`ProcessRunner`): a test blocking one of the two cooperative threads starves every
    /// in-process sim of the run.
    func run(_ script: String, _ arguments: [String] = [], environment: [String: String] = [:]) async throws -> ScriptResult {
        let environment = [
            "PATH": "\(bin.path):\(directory.appendingPathComponent("system").path)",
            "HOME": directory.appendingPathComponent("home").path,
            "LANG": "C",
            "FAKE_BOX": directory.path,
            "KVERIFY_STATE_DIR": stateDirectory.path,
            "KVERIFY_BIN": "none",
        ].merging(environment) { $1 }
        // A guard against a hanging script, not a timing assertion: no script here waits on anything real.
        let result = try await ProcessRunner.run(
            "/bin/bash", arguments: [RepositoryPaths.root.appendingPathComponent("scripts/\(script)").path] + arguments,
            environment: environment, timeout: .seconds(60))
        if result.timedOut {
            throw FixtureError("scripts/\(script) \(arguments.joined(separator: " ")) did not finish within 60 s")
        }
        return ScriptResult(status: result.status,
                            stdout: String(decoding: result.stdout, as: UTF8.self),
                            stderr: String(decoding: result.stderr, as: UTF8.self))
    }

    /// Every call the fakes recorded, in order.
    func calls() throws -> [RecordedCall] {
        guard FileManager.default.fileExists(atPath: callsLog.path) else { return [] }
        let lines = try String(contentsOf: callsLog, encoding: .utf8).split(separator: "\n")
        return lines.enumerated().map { index, line in
            let fields = line.split(separator: "\u{1f}", omittingEmptySubsequences: false).map(String.init)
            let stdinURL = directory.appendingPathComponent("stdin-\(index)")
            return RecordedCall(
                tool: fields[0],
                arguments: Array(fields.dropFirst()),
                stdin: try? String(contentsOf: stdinURL, encoding: .utf8)
            )
        }
    }

    /// Forgets the calls recorded so far (between two script runs).
    func clearCalls() throws {
        if FileManager.default.fileExists(atPath: callsLog.path) { try FileManager.default.removeItem(at: callsLog) }
    }

    func recordURL(_ name: String) -> URL { stateDirectory.appendingPathComponent("clusters/\(name).env") }
    func kubeconfigURL(_ name: String) -> URL { stateDirectory.appendingPathComponent("kubeconfig-\(name)") }

    /// The KEY=value pairs of a cluster record, or nil when there is none.
    func record(_ name: String) -> [String: String]? {
        guard let text = try? String(contentsOf: recordURL(name), encoding: .utf8) else { return nil }
        var pairs: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            pairs[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return pairs
    }

    /// Writes a record as setup would (for teardown tests that start from a given state).
    func writeRecord(_ name: String, _ pairs: KeyValuePairs<String, String>) throws {
        try FileManager.default.createDirectory(at: recordURL(name).deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        let text = pairs.map { "\($0.key)=\($0.value)\n" }.joined()
        try Data(text.utf8).write(to: recordURL(name))
    }
}

/// Bash snippets for the fakes.
enum FakeResponse {
    static let controlPlaneID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    /// docker: no containers for any cluster, except the kind control plane after `kind create` ran
    /// (kind's fake touches `created`), until `kind delete` (touches `deleted`).
    static let docker = """
        alive() { [[ -f $FAKE_BOX/created && ! -f $FAKE_BOX/deleted ]]; }
        case "$*" in
          ps*io.x-k8s.kind.role=control-plane*) alive && echo \(controlPlaneID) ;;
          ps*label=io.x-k8s.kind.cluster=*) alive && echo \(controlPlaneID) ;;
          ps*label=k3d.cluster=*) alive && echo k3dserver0id ;;
        esac
        exit 0
        """
    static let kind = """
        case "$1 $2" in
          "create cluster") : >"$FAKE_BOX/created" ;;
          "delete cluster") : >"$FAKE_BOX/deleted" ;;
        esac
        """
    static let k3d = """
        case "$1 $2" in
          "cluster create") : >"$FAKE_BOX/created" ;;
          "cluster delete") : >"$FAKE_BOX/deleted" ;;
        esac
        """
    /// kubectl: `get nodes -o name` lists `count` nodes; `config current-context` answers `context`.
    static func kubectl(nodes count: Int = 1, context: String = "ctx-from-kubectl") -> String {
        """
        case "$*" in
          *"get nodes -o name"*) for ((i = 1; i <= \(count); i++)); do echo "node/n$i"; done ;;
          *"config current-context"*) echo \(context) ;;
        esac
        """
    }

    static func standard(nodes: Int = 1) -> [String: String] {
        ["docker": docker, "kind": kind, "k3d": k3d, "kubectl": kubectl(nodes: nodes)]
    }
}

extension Array where Element == RecordedCall {
    /// The calls to one tool.
    func to(_ tool: String) -> [RecordedCall] { filter { $0.tool == tool } }
    /// The first call whose arguments start with `prefix`.
    func first(_ tool: String, _ prefix: String...) -> RecordedCall? {
        first { $0.tool == tool && $0.arguments.starts(with: prefix) }
    }
}
