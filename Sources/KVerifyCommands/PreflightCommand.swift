import ArgumentParser
import Findings
import KubeClient
import Verification

/// `kverify preflight`: is the cluster ready for a verification run?
struct PreflightCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight",
        abstract: "Check that a cluster is reachable, has enough Ready nodes, and grants what kverify needs.",
        discussion: """
            Reports the server version; every node with its readiness, roles and taints; whether at least --nodes \
            nodes are Ready (the cluster size, control plane included, as scripts/setup.sh and kind count it) and \
            at least --schedulable-nodes of them can take ordinary pods; and every permission a verification run \
            uses (SelfSubjectAccessReview; a warning where the server cannot answer).

            Exit 0: ready. 1: not enough nodes, or a permission is missing. 2: usage or kubeconfig error. \
            3: unreachable, TLS or authentication failure.

            \(ExitStatus.documentation)
            """
    )

    @Option(help: "Require at least this many Ready nodes in all.")
    var nodes: Int?

    @Option(help: "Require at least this many Ready nodes without NoSchedule/NoExecute taints.")
    var schedulableNodes: Int?

    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if let nodes, nodes < 1 { throw ValidationError("--nodes must be at least 1") }
        if let schedulableNodes, schedulableNodes < 0 { throw ValidationError("--schedulable-nodes must not be negative") }
    }

    func run() async throws {
        let api = try cluster.makeAPI()
        var report = Report(target: "preflight \(cluster.context ?? "current context") (\(cluster.backend.rawValue))")
        let preflight = Preflight(readyNodes: nodes, schedulableNodes: schedulableNodes, namespace: cluster.namespace)
        do {
            report.findings = try await report.timed("preflight") { try await preflight.run(api) }
        } catch let error as KubeError {
            report.findings.append(.fail("cluster.reachable", subject: "API server", expected: "an answering API server",
                                         observed: error.message))
            try outputOptions.finish(report, exitStatus: ExitCodes.status(for: error))
            return
        }
        try outputOptions.finish(report)
    }
}
