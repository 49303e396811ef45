import Foundation
import KVerifyTestSupport
import Testing

/// scripts/setup.sh against fake kind/k3d/docker/kubectl: the exact commands, the generated kind config and
/// k3d arguments for 1, 3 and 5 nodes, provider auto-detection, dry runs and missing tools.
@Suite struct SetupScriptTests {
    static let nodePorts = ["30379", "30800", "30991"]
    let root = RepositoryPaths.root.path

    @Test(arguments: [1, 3, 5])
    func kindCreatesOneControlPlaneAndWorkersWithNodePorts(nodes: Int) async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard(nodes: nodes)) { box in
            let result = try await box.run("setup.sh", ["--provider", "kind", "--nodes", "\(nodes)", "--name", "kv-test"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let kubeconfig = box.kubeconfigURL("kv-test").path
            let calls = try box.calls()

            #expect(calls.map(\.tool) == ["docker", "docker", "docker", "kind", "docker", "kind", "kubectl", "kubectl"])
            #expect(calls[0].arguments == ["info"])
            #expect(calls[1].arguments == ["ps", "-aq", "--no-trunc", "--filter", "label=io.x-k8s.kind.cluster=kv-test"])
            #expect(calls[2].arguments == ["build", "--tag", "kverify-demo-app:dev",
                                           "--file", "\(root)/manifests/app/Dockerfile", "\(root)/manifests/app"])
            #expect(calls[3].arguments == ["create", "cluster", "--name", "kv-test", "--config", "-",
                                           "--kubeconfig", kubeconfig, "--wait", "300s"])
            #expect(calls[5].arguments == ["load", "docker-image", "kverify-demo-app:dev", "--name", "kv-test"])
            #expect(calls[6].arguments == ["--kubeconfig", kubeconfig, "--context", "kind-kv-test", "get", "nodes", "-o", "name"])
            #expect(Array(calls[7].arguments.prefix(8)) == ["--kubeconfig", kubeconfig, "--context", "kind-kv-test",
                                                             "wait", "--for=condition=Ready", "nodes", "--all"])

            let record = try #require(box.record("kv-test"))
            let marker = try #require(record["KVERIFY_MARKER"])
            #expect(record["KVERIFY_PROVIDER"] == "kind")
            #expect(record["KVERIFY_CREATED"] == "yes")
            #expect(record["KVERIFY_CREATED_BY"] == "kverify-setup")
            #expect(record["KVERIFY_CONTEXT"] == "kind-kv-test")
            #expect(record["KVERIFY_KUBECONFIG"] == kubeconfig)
            #expect(record["KVERIFY_NODES"] == "\(nodes)")
            #expect(record["KVERIFY_NODE_ID"] == FakeResponse.controlPlaneID)

            let config = try #require(calls[3].stdin, "kind create read no config on stdin")
            try Self.expectKindConfig(config, name: "kv-test", nodes: nodes, marker: marker)
            #expect(result.stdout.contains("kubeconfig: \(kubeconfig)\n"))
            #expect(result.stdout.contains("context: kind-kv-test\n"))
        }
    }

    /// The kind config: 1 control plane carrying the three NodePort mappings on 127.0.0.1, NODES-1 workers,
    /// every node labelled with setup's marker.
    static func expectKindConfig(_ config: String, name: String, nodes: Int, marker: String) throws {
        let lines = config.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.contains("kind: Cluster"))
        #expect(lines.contains("apiVersion: kind.x-k8s.io/v1alpha4"))
        #expect(lines.contains("name: \(name)"))
        #expect(lines.filter { $0 == "- role: control-plane" }.count == 1)
        #expect(lines.filter { $0 == "- role: worker" }.count == nodes - 1)
        #expect(lines.filter { $0 == "dev.kverify/created-by: \"\(marker)\"" }.count == nodes)
        #expect(lines.filter { $0.hasPrefix("- containerPort:") }.map { $0.split(separator: " ").last.map(String.init) }
            == nodePorts)
        #expect(lines.filter { $0.hasPrefix("hostPort:") }.map { $0.split(separator: " ").last.map(String.init) }
            == nodePorts)
        #expect(lines.filter { $0 == "listenAddress: \"127.0.0.1\"" }.count == 3)
        // The port mappings belong to the control plane: they come before the first worker.
        let firstWorker = lines.firstIndex(of: "- role: worker") ?? lines.endIndex
        #expect(lines.lastIndex { $0.hasPrefix("- containerPort:") }.map { $0 < firstWorker } == true)
    }

    @Test(arguments: [1, 3, 5])
    func k3dCreatesOneServerAndAgentsWithNodePorts(nodes: Int) async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard(nodes: nodes)) { box in
            let result = try await box.run("setup.sh", ["--provider", "k3d", "--nodes", "\(nodes)", "--name", "kv-test",
                                                  "--image", "example/app:1", "--timeout", "120"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let kubeconfig = box.kubeconfigURL("kv-test").path
            let calls = try box.calls()
            let marker = try #require(box.record("kv-test")?["KVERIFY_MARKER"])

            #expect(calls.map(\.tool) == ["docker", "docker", "docker", "k3d", "k3d", "k3d", "kubectl", "kubectl"])
            #expect(calls[1].arguments == ["ps", "-aq", "--no-trunc", "--filter", "label=k3d.cluster=kv-test"])
            #expect(calls[2].arguments.prefix(3) == ["build", "--tag", "example/app:1"])
            #expect(calls[3].arguments == [
                "cluster", "create", "kv-test", "--servers", "1", "--agents", "\(nodes - 1)",
                "--port", "127.0.0.1:30379:30379@server:0",
                "--port", "127.0.0.1:30800:30800@server:0",
                "--port", "127.0.0.1:30991:30991@server:0",
                "--runtime-label", "dev.kverify.created-by=\(marker)@server:0",
                "--kubeconfig-update-default=false", "--kubeconfig-switch-context=false",
                "--wait", "--timeout", "120s",
            ])
            #expect(calls[4].arguments == ["kubeconfig", "write", "kv-test", "--output", kubeconfig, "--overwrite"])
            #expect(calls[5].arguments == ["image", "import", "example/app:1", "--cluster", "kv-test"])
            #expect(calls[7].arguments.contains("k3d-kv-test"))

            let record = try #require(box.record("kv-test"))
            #expect(record["KVERIFY_PROVIDER"] == "k3d")
            #expect(record["KVERIFY_CONTEXT"] == "k3d-kv-test")
            #expect(record["KVERIFY_IMAGE"] == "example/app:1")
            #expect(record["KVERIFY_NODE_ID"] == nil)
            #expect(result.stdout.contains("context: k3d-kv-test\n"))
        }
    }

    struct DryRunCase: Sendable, CustomTestStringConvertible {
        var provider: String
        var nodes: Int
        var testDescription: String { "\(provider), \(nodes) node(s)" }
    }

    @Test(arguments: [1, 3, 5].flatMap { n in ["kind", "k3d"].map { DryRunCase(provider: $0, nodes: n) } })
    func dryRunPrintsEveryCommandAndRunsNothing(_ c: DryRunCase) async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard(nodes: c.nodes)) { box in
            let result = try await box.run("setup.sh", ["--provider", c.provider, "--nodes", "\(c.nodes)", "--dry-run"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(try box.calls() == [], "a dry run must not run any tool")
            #expect(!FileManager.default.fileExists(atPath: box.stateDirectory.path), "a dry run must not write state")

            let commands = result.stdout.split(separator: "\n").filter { $0.hasPrefix("[dry-run] ") }
            #expect(commands.contains { $0.hasPrefix("[dry-run] docker build --tag kverify-demo-app:dev") })
            #expect(commands.contains { $0.contains(" wait --for=condition=Ready nodes --all") })
            if c.provider == "kind" {
                #expect(commands.contains { $0.hasPrefix("[dry-run] kind create cluster --name kverify --config - ") })
                #expect(commands.contains("[dry-run] kind load docker-image kverify-demo-app:dev --name kverify"))
                // The here-document after `kind create` is the config kind would read.
                let body = try #require(result.stdout.components(separatedBy: "<<'EOF'\n").dropFirst().first)
                let config = try #require(body.components(separatedBy: "\nEOF\n").first)
                let marker = try #require(result.stdout.split(separator: "\n")
                    .first { $0.hasPrefix("  KVERIFY_MARKER=") }?.dropFirst("  KVERIFY_MARKER=".count))
                try Self.expectKindConfig(config, name: "kverify", nodes: c.nodes, marker: String(marker))
            } else {
                #expect(commands.contains {
                    $0.hasPrefix("[dry-run] k3d cluster create kverify --servers 1 --agents \(c.nodes - 1) ")
                        && $0.contains("--port 127.0.0.1:30379:30379@server:0")
                })
                #expect(commands.contains("[dry-run] k3d image import kverify-demo-app:dev --cluster kverify"))
            }
        }
    }

    struct DetectionCase: Sendable, CustomTestStringConvertible {
        var installed: Set<String>
        var expected: String
        var testDescription: String { "\(installed.sorted()) → \(expected)" }
    }

    @Test(arguments: [
        DetectionCase(installed: ["k3d", "kind", "docker", "kubectl"], expected: "k3d"),
        DetectionCase(installed: ["k3d", "docker", "kubectl"], expected: "k3d"),
        DetectionCase(installed: ["kind", "docker", "kubectl"], expected: "kind"),
        DetectionCase(installed: ["docker", "kubectl"], expected: "existing"),
        DetectionCase(installed: ["kubectl"], expected: "existing"),
    ])
    func autoDetectionPrefersK3dThenKindThenTheCurrentContext(_ c: DetectionCase) async throws {
        try await FakeToolbox.with(tools: c.installed, responses: FakeResponse.standard(nodes: 2)) { box in
            let result = try await box.run("setup.sh", ["--nodes", "2"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stderr.contains("provider: \(c.expected) (auto-detected)"))
            let record = try #require(box.record("kverify"))
            #expect(record["KVERIFY_PROVIDER"] == c.expected)
            let calls = try box.calls()
            switch c.expected {
            case "existing":
                #expect(record["KVERIFY_CREATED"] == "no")
                #expect(record["KVERIFY_CONTEXT"] == "ctx-from-kubectl")
                #expect(record["KVERIFY_KUBECONFIG"] == "")
                #expect(calls.to("docker").isEmpty && calls.to("kind").isEmpty && calls.to("k3d").isEmpty,
                        "an existing cluster gets no image build and no cluster commands: \(calls)")
                #expect(calls.first("kubectl", "config", "current-context") != nil)
                #expect(calls.first("kubectl", "--context", "ctx-from-kubectl", "wait") != nil)
            default:
                #expect(calls.contains { $0.tool == c.expected && $0.arguments.contains("create") })
            }
        }
    }

    @Test func contextOptionMeansAnExistingClusterAndCreatesNothing() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            let result = try await box.run("setup.sh", ["--context", "staging", "--name", "stage"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(box.record("stage")?["KVERIFY_CONTEXT"] == "staging")
            #expect(box.record("stage")?["KVERIFY_CREATED"] == "no")
            #expect(try box.calls().map(\.tool) == ["kubectl", "kubectl"])
            #expect(result.stdout.contains("never deletes this cluster"))
        }
    }

    @Test func withNoToolAtAllTheErrorNamesEveryToolAndWhereToGetIt() async throws {
        try await FakeToolbox.with(tools: []) { box in
            let result = try await box.run("setup.sh")
            #expect(result.status == 2)
            for needle in ["k3d", "kind", "kubectl", "Docker", "https://k3d.io", "https://kind.sigs.k8s.io",
                           "https://kubernetes.io/docs/tasks/tools/", "never download"] {
                #expect(result.stderr.contains(needle), "missing '\(needle)' in: \(result.stderr)")
            }
            #expect(box.record("kverify") == nil)
        }
    }

    struct MissingToolCase: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var installed: Set<String>
        var missing: String
        var hint: String
        var testDescription: String { "\(arguments.joined(separator: " ")) without \(missing)" }
    }

    @Test(arguments: [
        MissingToolCase(arguments: ["--provider", "kind"], installed: ["docker", "kubectl"], missing: "kind",
                        hint: "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"),
        MissingToolCase(arguments: ["--provider", "k3d"], installed: ["docker", "kubectl", "kind"], missing: "k3d",
                        hint: "https://k3d.io/#installation"),
        MissingToolCase(arguments: ["--provider", "kind"], installed: ["kind", "kubectl"], missing: "docker",
                        hint: "https://docs.docker.com/engine/install/"),
        MissingToolCase(arguments: ["--provider", "k3d"], installed: ["k3d", "kubectl"], missing: "docker",
                        hint: "https://docs.docker.com/engine/install/"),
        MissingToolCase(arguments: ["--provider", "kind"], installed: ["kind", "docker"], missing: "kubectl",
                        hint: "https://kubernetes.io/docs/tasks/tools/"),
        MissingToolCase(arguments: ["--provider", "existing"], installed: ["docker"], missing: "kubectl",
                        hint: "https://kubernetes.io/docs/tasks/tools/"),
        MissingToolCase(arguments: ["--provider", "kind", "--dry-run"], installed: ["docker", "kubectl"], missing: "kind",
                        hint: "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"),
    ])
    func aMissingToolIsNamedWithHowToInstallIt(_ c: MissingToolCase) async throws {
        try await FakeToolbox.with(tools: c.installed, responses: FakeResponse.standard()) { box in
            let result = try await box.run("setup.sh", c.arguments)
            #expect(result.status == 2)
            #expect(result.stderr.contains("\(c.missing) not found on PATH"), "stderr: \(result.stderr)")
            #expect(result.stderr.contains(c.hint), "stderr: \(result.stderr)")
            #expect(try box.calls().filter { $0.arguments.contains("create") }.isEmpty)
            #expect(box.record("kverify") == nil)
        }
    }

    @Test func aClusterWithTheSameNameThatSetupDidNotCreateIsRefused() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try Data().write(to: box.directory.appendingPathComponent("created"))  // docker now lists a kind cluster
            let result = try await box.run("setup.sh", ["--provider", "kind"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("a kind cluster named 'kverify' already exists"), "stderr: \(result.stderr)")
            #expect(result.stderr.contains("kind delete cluster --name kverify"))
            #expect(try box.calls().to("kind").isEmpty)
            #expect(box.record("kverify") == nil)
        }
    }

    @Test func anAlreadyRecordedNameIsRefusedBeforeAnyCommand() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try box.writeRecord("kverify", ["KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "kind"])
            let result = try await box.run("setup.sh", ["--provider", "kind"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("already recorded in \(box.recordURL("kverify").path)"))
            #expect(result.stderr.contains("scripts/teardown.sh --name kverify"))
            #expect(try box.calls() == [])
        }
    }

    @Test func waitsWithKverifyPreflightWhenTheBinarySupportsIt() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard(nodes: 3)) { box in
            try box.install(tool: "kverify", response: "")  // `kverify preflight --help` and `preflight …` exit 0
            let kverify = box.bin.appendingPathComponent("kverify").path
            let result = try await box.run("setup.sh", ["--provider", "kind", "--nodes", "3", "--skip-build"],
                                     environment: ["KVERIFY_BIN": kverify])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let calls = try box.calls()
            #expect(calls.to("kverify").map(\.arguments) == [
                ["preflight", "--help"],
                ["preflight", "--nodes", "3", "--kubeconfig", box.kubeconfigURL("kverify").path, "--context", "kind-kverify"],
            ])
            #expect(calls.to("kubectl").isEmpty)
            #expect(calls.first("docker", "build") == nil, "--skip-build must not build")
        }
    }

    @Test func aKverifyWithoutPreflightFallsBackToKubectl() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard(nodes: 1)) { box in
            try box.install(tool: "kverify", response: #"[[ "$*" == "preflight --help" ]] && exit 64"#)
            let result = try await box.run("setup.sh", ["--provider", "kind"],
                                     environment: ["KVERIFY_BIN": box.bin.appendingPathComponent("kverify").path])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let calls = try box.calls()
            #expect(calls.to("kverify").map(\.arguments) == [["preflight", "--help"]])
            #expect(calls.first("kubectl", "--kubeconfig", box.kubeconfigURL("kverify").path, "--context", "kind-kverify",
                                "wait") != nil)
        }
    }

    @Test func aKverifyOnPathIsFoundWithoutKverifyBin() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try box.install(tool: "kverify", response: "")
            let result = try await box.run("setup.sh", ["--provider", "k3d", "--skip-build"], environment: ["KVERIFY_BIN": ""])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(try box.calls().to("kverify").map { Array($0.arguments.prefix(3)) }
                == [["preflight", "--help"], ["preflight", "--nodes", "1"]])
        }
    }

    @Test func aPreflightThatRejectsItsArgumentsFallsBackToKubectl() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try box.install(tool: "kverify", response: #"""
                [[ "$*" == "preflight --help" ]] && exit 0
                echo "Error: Unknown option '--kubeconfig'"; exit 2
                """#)
            let result = try await box.run("setup.sh", ["--provider", "kind"],
                                     environment: ["KVERIFY_BIN": box.bin.appendingPathComponent("kverify").path])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stderr.contains("kverify preflight rejected its arguments (exit 2)"))
            #expect(result.stderr.contains("Unknown option '--kubeconfig'"))
            #expect(try box.calls().contains { $0.tool == "kubectl" && $0.arguments.contains("wait") })
        }
    }

    @Test func anInvalidKverifyBinIsAUsageError() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            let result = try await box.run("setup.sh", ["--provider", "kind"], environment: ["KVERIFY_BIN": "/nonexistent/kverify"])
            #expect(result.status == 2)
            #expect(result.stderr.contains("KVERIFY_BIN='/nonexistent/kverify' is not an executable file"))
            #expect(try box.calls().to("kind").isEmpty)
        }
    }

    @Test(arguments: ["kind", "k3d"])
    func anUnreachableDockerDaemonStopsSetupBeforeAnythingIsCreated(provider: String) async throws {
        var responses = FakeResponse.standard()
        responses["docker"] = #"[[ $1 == info ]] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }"#
        try await FakeToolbox.with(responses: responses) { box in
            let result = try await box.run("setup.sh", ["--provider", provider])
            #expect(result.status == 3)
            #expect(result.stderr.contains("docker is installed but its daemon does not answer"), "stderr: \(result.stderr)")
            #expect(try box.calls().map(\.description) == ["docker info"])
            #expect(box.record("kverify") == nil)
        }
    }

    @Test func preflightIsRetriedUntilTheDeadlineThenItsLastWordIsShown() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            // preflight --help works; the check itself keeps failing.
            try box.install(tool: "kverify", response: #"""
                [[ "$*" == "preflight --help" ]] && exit 0
                echo "node kverify-worker2: Ready=False (KubeletNotReady)"; exit 1
                """#)
            let result = try await box.run("setup.sh", ["--provider", "kind", "--nodes", "3", "--timeout", "1"],
                                     environment: ["KVERIFY_BIN": box.bin.appendingPathComponent("kverify").path])
            #expect(result.status == 3)
            #expect(result.stderr.contains("nodes of context 'kind-kverify' not ready within 1s"), "stderr: \(result.stderr)")
            #expect(result.stderr.contains("node kverify-worker2: Ready=False (KubeletNotReady)"))
            #expect(try box.calls().to("kverify").count >= 2, "preflight is retried, not run once")
            #expect(box.record("kverify") != nil, "the cluster exists, so its record stays for teardown")
            #expect(result.stderr.contains("'scripts/teardown.sh --name kverify' deletes it"))
        }
    }

    @Test func kubectlWaitGivesUpWhenNodesNeverRegister() async throws {
        let responses = FakeResponse.standard(nodes: 1)  // only 1 of the 3 nodes ever shows up
        try await FakeToolbox.with(responses: responses) { box in
            let result = try await box.run("setup.sh", ["--provider", "kind", "--nodes", "3", "--timeout", "1"])
            #expect(result.status == 3)
            #expect(result.stderr.contains("context 'kind-kverify': 1 of 3 node(s) registered after 1s"), "stderr: \(result.stderr)")
            #expect(try box.calls().first("kubectl", "--kubeconfig", box.kubeconfigURL("kverify").path,
                                          "--context", "kind-kverify", "wait") == nil)
        }
    }

    struct BadArgumentCase: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var message: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    @Test(arguments: [
        BadArgumentCase(arguments: ["--nodes", "0"], message: "--nodes '0': expected a whole number from 1 to 99"),
        BadArgumentCase(arguments: ["--nodes", "three"], message: "--nodes 'three': expected a whole number"),
        BadArgumentCase(arguments: ["--nodes"], message: "--nodes needs a value"),
        BadArgumentCase(arguments: ["--name", "My_Cluster"], message: "--name 'My_Cluster': expected 1 to 32 lowercase"),
        BadArgumentCase(arguments: ["--name", "../x"], message: "--name '../x'"),
        BadArgumentCase(arguments: ["--provider", "minikube"], message: "--provider 'minikube': expected auto, kind, k3d or existing"),
        BadArgumentCase(arguments: ["--provider", "kind", "--context", "prod"], message: "--context applies to --provider existing only; a kind cluster's context is kind-kverify"),
        BadArgumentCase(arguments: ["--image", "bad image"], message: "--image 'bad image'"),
        BadArgumentCase(arguments: ["--timeout", "-5"], message: "--timeout '-5': expected a number of seconds"),
        BadArgumentCase(arguments: ["--frobnicate"], message: "unknown argument '--frobnicate'"),
    ])
    func badArgumentsFailWithExitTwoNamingTheOption(_ c: BadArgumentCase) async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            let result = try await box.run("setup.sh", c.arguments)
            #expect(result.status == 2)
            #expect(result.stderr.contains(c.message), "stderr: \(result.stderr)")
            #expect(try box.calls() == [])
        }
    }
}
