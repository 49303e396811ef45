import Foundation
import KVerifyTestSupport
import Testing

/// scripts/teardown.sh deletes only the cluster setup.sh recorded and marked, and is safe to run twice.
@Suite struct TeardownScriptTests {
    @Test(arguments: ["kind", "k3d"])
    func deletesTheClusterSetupCreatedThenIsANoOp(provider: String) async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard(nodes: 3)) { box in
            let setup = try await box.run("setup.sh", ["--provider", provider, "--nodes", "3", "--name", "kv-a"])
            try #require(setup.status == 0, "setup failed: \(setup.stderr)")
            try Data("apiVersion: v1\n".utf8).write(to: box.kubeconfigURL("kv-a"))  // what kind/k3d would have written
            try box.clearCalls()

            let first = try await box.run("teardown.sh", ["--name", "kv-a"])
            #expect(first.status == 0, "stderr: \(first.stderr)")
            let deletes = try box.calls().filter { $0.tool == provider && $0.arguments.contains("delete") }
            let expected = provider == "kind"
                ? ["delete", "cluster", "--name", "kv-a", "--kubeconfig", box.kubeconfigURL("kv-a").path]
                : ["cluster", "delete", "kv-a"]
            #expect(deletes.map(\.arguments) == [expected])
            #expect(box.record("kv-a") == nil)
            #expect(!FileManager.default.fileExists(atPath: box.kubeconfigURL("kv-a").path))

            try box.clearCalls()
            let second = try await box.run("teardown.sh", ["--name", "kv-a"])
            #expect(second.status == 0, "stderr: \(second.stderr)")
            #expect(second.stderr.contains("nothing to tear down"))
            #expect(try box.calls().filter { $0.arguments.contains("delete") }.isEmpty)
        }
    }

    @Test func refusesAClusterThatSetupDidNotRecord() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try Data().write(to: box.directory.appendingPathComponent("created"))  // someone's own kind cluster "kverify"
            let result = try await box.run("teardown.sh")
            #expect(result.status == 1)
            #expect(result.stderr.contains("refusing to delete kind cluster 'kverify'"), "stderr: \(result.stderr)")
            #expect(result.stderr.contains("setup did not record creating it"))
            #expect(try box.calls().filter { $0.arguments.contains("delete") }.isEmpty)
        }
    }

    @Test func refusesAKindClusterRecreatedUnderTheRecordedName() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try Data().write(to: box.directory.appendingPathComponent("created"))
            let recordedID = String(repeating: "f", count: 64)  // docker now shows FakeResponse.controlPlaneID instead
            try box.writeRecord("kverify", [
                "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "kind", "KVERIFY_CREATED": "yes",
                "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_NODE_ID": recordedID,
            ])
            let result = try await box.run("teardown.sh")
            #expect(result.status == 1)
            #expect(result.stderr.contains("it does not carry setup's marker"), "stderr: \(result.stderr)")
            #expect(result.stderr.contains("control-plane container ffffffffffff, found 0123456789ab"))
            #expect(try box.calls().to("kind").isEmpty)
            #expect(box.record("kverify") != nil, "a refused teardown keeps the record")
        }
    }

    @Test func refusesAK3dClusterWithoutSetupsRuntimeLabel() async throws {
        let docker = #"""
            case "$*" in
              *dev.kverify.created-by=*) ;;      # no container carries the marker
              ps*label=k3d.cluster=*) echo someone-elses-server ;;
            esac
            """#
        try await FakeToolbox.with(responses: ["docker": docker, "k3d": FakeResponse.k3d]) { box in
            try box.writeRecord("kverify", [
                "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "k3d", "KVERIFY_CREATED": "yes",
                "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_MARKER": "setup-20260101T000000Z-1",
            ])
            let result = try await box.run("teardown.sh")
            #expect(result.status == 1)
            #expect(result.stderr.contains("label dev.kverify.created-by=setup-20260101T000000Z-1, found on no container"),
                    "stderr: \(result.stderr)")
            #expect(result.stderr.contains("k3d cluster delete kverify"))
            #expect(try box.calls().to("k3d").isEmpty)
        }
    }

    @Test func neverDeletesAnExistingClusterOnlyForgetsItsRecord() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            let setup = try await box.run("setup.sh", ["--provider", "existing", "--context", "prod"])
            try #require(setup.status == 0, "setup failed: \(setup.stderr)")
            try box.clearCalls()
            let result = try await box.run("teardown.sh")
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stderr.contains("context 'prod' belongs to an existing cluster kverify did not create"))
            #expect(try box.calls() == [], "no tool may be asked to touch an existing cluster")
            #expect(box.record("kverify") == nil)
        }
    }

    @Test func refusesARecordNotWrittenBySetup() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try box.writeRecord("kverify", ["KVERIFY_PROVIDER": "kind", "KVERIFY_CLUSTER_NAME": "kverify"])
            let result = try await box.run("teardown.sh")
            #expect(result.status == 1)
            #expect(result.stderr.contains("lacks KVERIFY_CREATED_BY=kverify-setup"), "stderr: \(result.stderr)")
            #expect(try box.calls() == [])
        }
    }

    @Test func aMalformedRecordIsAnErrorNamingTheLine() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try box.writeRecord("kverify", ["KVERIFY_CREATED_BY": "kverify-setup"])
            let handle = try FileHandle(forWritingTo: box.recordURL("kverify"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("rm -rf /\n".utf8))
            try handle.close()
            let result = try await box.run("teardown.sh")
            #expect(result.status == 2)
            #expect(result.stderr.contains("line 2: expected KEY=value, got 'rm -rf /'"), "stderr: \(result.stderr)")
            #expect(try box.calls() == [])
        }
    }

    @Test func dryRunPrintsTheDeleteAndRunsNothing() async throws {
        try await FakeToolbox.with(responses: FakeResponse.standard()) { box in
            try box.writeRecord("kverify", [
                "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "kind", "KVERIFY_CREATED": "yes",
                "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_NODE_ID": FakeResponse.controlPlaneID,
                "KVERIFY_KUBECONFIG": box.kubeconfigURL("kverify").path,
            ])
            let result = try await box.run("teardown.sh", ["--dry-run"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(try box.calls() == [])
            #expect(result.stdout.contains(
                "[dry-run] kind delete cluster --name kverify --kubeconfig \(box.kubeconfigURL("kverify").path)\n"))
            #expect(result.stdout.contains("[dry-run] rm -f "))
            #expect(box.record("kverify") != nil)
        }
    }

    @Test func anUnreachableDockerDaemonKeepsTheRecordAndExitsThree() async throws {
        let docker = #"[[ $1 == info ]] && exit 1"#
        try await FakeToolbox.with(responses: ["docker": docker, "kind": FakeResponse.kind]) { box in
            try box.writeRecord("kverify", [
                "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "kind", "KVERIFY_CREATED": "yes",
                "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_NODE_ID": FakeResponse.controlPlaneID,
            ])
            let result = try await box.run("teardown.sh")
            #expect(result.status == 3)
            #expect(result.stderr.contains("docker does not answer"), "stderr: \(result.stderr)")
            #expect(try box.calls().to("kind").isEmpty)
            #expect(box.record("kverify") != nil)
        }
    }

    @Test func aFailedDeleteKeepsTheRecordSoTeardownCanRunAgain() async throws {
        var responses = FakeResponse.standard()
        responses["kind"] = #"[[ $1 == delete ]] && { echo "ERROR: failed to delete cluster" >&2; exit 1; }"#
        try await FakeToolbox.with(responses: responses) { box in
            try Data().write(to: box.directory.appendingPathComponent("created"))
            try box.writeRecord("kverify", [
                "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "kind", "KVERIFY_CREATED": "yes",
                "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_NODE_ID": FakeResponse.controlPlaneID,
            ])
            let result = try await box.run("teardown.sh")
            #expect(result.status == 3)
            #expect(result.stderr.contains("kind could not delete cluster 'kverify'"), "stderr: \(result.stderr)")
            #expect(box.record("kverify") != nil)
        }
    }

    @Test func withoutTheProviderToolTheErrorSaysHowToInstallIt() async throws {
        try await FakeToolbox.with(tools: ["docker"], responses: FakeResponse.standard()) { box in
            try box.writeRecord("kverify", [
                "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "k3d", "KVERIFY_CREATED": "yes",
                "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_MARKER": "setup-x",
            ])
            let result = try await box.run("teardown.sh")
            #expect(result.status == 2)
            #expect(result.stderr.contains("k3d not found on PATH"), "stderr: \(result.stderr)")
            #expect(result.stderr.contains("https://k3d.io/#installation"))
            #expect(box.record("kverify") != nil)
        }
    }
}
