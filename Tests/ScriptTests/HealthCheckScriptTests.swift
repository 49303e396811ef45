import Foundation
import KVerifyTestSupport
import Testing

/// scripts/health-check.sh against a fake kubectl: reachability, node readiness, the image on every node,
/// and kverify's permissions.
@Suite struct HealthCheckScriptTests {
    static let image = "docker.io/library/kverify-demo-app:dev"

    /// A fake kubectl: `nodes` are "name<TAB>Ready<TAB>images" lines; `denied` are "VERB RESOURCE" strings.
    static func kubectl(nodes: [String], denied: [String] = [], reachable: Bool = true) -> String {
        let deniedCases = denied.map { #"  *"auth can-i \#($0) "*) exit 1 ;;"# }.joined(separator: "\n")
        return """
            case "$*" in
              *"get --raw /readyz"*) \(reachable ? "echo ok" : "echo 'dial tcp 127.0.0.1:6443: connect: connection refused' >&2; exit 1") ;;
              *"get nodes -o jsonpath="*) printf '\(nodes.map { $0 + "\\n" }.joined())' ;;
            \(deniedCases)
            esac
            """
    }

    func recordCluster(_ box: FakeToolbox, nodes: Int) throws {
        try box.writeRecord("kverify", [
            "KVERIFY_CREATED_BY": "kverify-setup", "KVERIFY_PROVIDER": "kind", "KVERIFY_CREATED": "yes",
            "KVERIFY_CLUSTER_NAME": "kverify", "KVERIFY_KUBECONFIG": box.kubeconfigURL("kverify").path,
            "KVERIFY_CONTEXT": "kind-kverify", "KVERIFY_NODES": "\(nodes)", "KVERIFY_IMAGE": "kverify-demo-app:dev",
        ])
        try Data("apiVersion: v1\n".utf8).write(to: box.kubeconfigURL("kverify"))
    }

    @Test func aHealthyRecordedClusterPassesEveryCheck() async throws {
        let nodes = (1...3).map { "n\($0)\tTrue\tregistry.k8s.io/pause:3.10 \(Self.image) " }
        try await FakeToolbox.with(responses: ["kubectl": Self.kubectl(nodes: nodes)]) { box in
            try recordCluster(box, nodes: 3)
            let result = try await box.run("health-check.sh")
            #expect(result.status == 0, "stdout: \(result.stdout) stderr: \(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.filter { $0.hasPrefix("ok ") }.count == 4, "\(lines)")
            #expect(lines.contains { $0.contains("3 of 3 node(s) Ready (expected at least 3)") })
            #expect(lines.contains { $0.contains("kverify-demo-app:dev present on all 3 node(s)") })
            #expect(lines.last == "health: ok")
            let calls = try box.calls()
            #expect(calls.allSatisfy { $0.arguments.starts(with: ["--kubeconfig", box.kubeconfigURL("kverify").path,
                                                                  "--context", "kind-kverify"]) })
            #expect(calls.contains { $0.arguments.contains("--subresource=proxy") })
            #expect(calls.filter { $0.arguments.contains("can-i") }.count == 29)
        }
    }

    @Test func notReadyNodesMissingImagesAndDeniedVerbsAreEachNamed() async throws {
        let nodes = ["n1\tTrue\t\(Self.image) ", "n2\tFalse\t\(Self.image) ", "n3\tTrue\tregistry.k8s.io/pause:3.10 "]
        let kubectl = Self.kubectl(nodes: nodes, denied: ["delete namespaces", "get pods --subresource=proxy"])
        try await FakeToolbox.with(responses: ["kubectl": kubectl]) { box in
            try recordCluster(box, nodes: 3)
            let result = try await box.run("health-check.sh")
            #expect(result.status == 1)
            let out = result.stdout
            #expect(out.contains("FAIL  nodes        2 of 3 node(s) Ready, expected at least 3; not Ready: n2 (Ready=False)"), "\(out)")
            #expect(out.contains("FAIL  image        kverify-demo-app:dev not on node(s): n3"), "\(out)")
            #expect(out.contains("FAIL  permissions  denied in namespace default: delete namespaces, get pods --subresource=proxy"), "\(out)")
            #expect(out.contains("health: 3 of 4 checks failed"))
        }
    }

    @Test func anUnreachableClusterExitsThree() async throws {
        try await FakeToolbox.with(responses: ["kubectl": Self.kubectl(nodes: [], reachable: false)]) { box in
            let result = try await box.run("health-check.sh", ["--context", "gone"])
            #expect(result.status == 3)
            #expect(result.stdout.contains("FAIL  reachable    context 'gone' does not answer: dial tcp 127.0.0.1:6443: connect: connection refused"),
                    "\(result.stdout)")
        }
    }

    @Test func withoutARecordAMissingImageIsOnlyAWarning() async throws {
        let nodes = ["n1\tTrue\tregistry.k8s.io/pause:3.10 "]
        try await FakeToolbox.with(responses: ["kubectl": Self.kubectl(nodes: nodes)]) { box in
            let result = try await box.run("health-check.sh", ["--context", "prod", "--namespace", "kverify"])
            #expect(result.status == 0, "\(result.stdout)")
            #expect(result.stdout.contains("warn  image        kverify-demo-app:dev not on node(s): n1"))
            #expect(try box.calls().contains { $0.arguments.contains("--namespace") && $0.arguments.contains("kverify") })
        }
    }

    @Test func dryRunRunsNothing() async throws {
        try await FakeToolbox.with(responses: ["kubectl": Self.kubectl(nodes: [])]) { box in
            let result = try await box.run("health-check.sh", ["--dry-run", "--context", "prod"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(try box.calls() == [])
            #expect(result.stdout.contains("[dry-run] kubectl --context prod get --raw /readyz --request-timeout=10s\n"))
            #expect(result.stdout.contains("[dry-run] kubectl --context prod auth can-i get pods --subresource=log --namespace default --quiet\n"))
        }
    }

    @Test func withoutKubectlTheErrorSaysHowToInstallIt() async throws {
        try await FakeToolbox.with(tools: ["docker", "kind"]) { box in
            let result = try await box.run("health-check.sh")
            #expect(result.status == 2)
            #expect(result.stderr.contains("kubectl not found on PATH"))
            #expect(result.stderr.contains("https://kubernetes.io/docs/tasks/tools/"))
        }
    }
}
