// Verifies the DaemonSet in a manifests directory (argument 1, default ./manifests) on a 3-node simulated cluster
// with real pods, through kverify's public library products only. Exit 0 when VERIFIED.
import Foundation
import KubeClient
import KubeConfig
import KubeSim
import Verification

let directory = CommandLine.arguments.dropFirst().first ?? "manifests"
let verified = try await SimulatedCluster.with(options: .init(nodes: 3)) { sim in
    let api = RESTBackend(configuration: try KubeConfigLoader().load(.init(kubeconfig: sim.kubeconfigPath)))
    let manifests = try Pattern.daemonset.manifestFiles.flatMap { try ManifestLoader.load(file: "\(directory)/\($0)") }
    var options = PatternRun.Options(pattern: .daemonset, nodes: 3, manifests: manifests)
    options.observeExpiry = false  // keeps the example short; the expiry phase works as in the CLI
    let result = await PatternRun(api: api, options: options).run()
    for finding in result.report.findings where finding.status != .pass {
        print(finding.status, finding.checkID, finding.subject, finding.observed ?? "")
    }
    print(result.verified ? "VERIFIED" : "FAILED", "with \(result.report.findings.count) findings")
    return result.verified
}
exit(verified ? 0 : 1)
