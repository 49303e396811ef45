import ArgumentParser
import Findings
import Foundation
import KubeClient
import KubeConfig
import KubeModel

/// Which `KubeAPI` implementation a command talks through.
enum BackendChoice: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// libcurl straight to the API server.
    case api
    /// The kubectl binary, one process per call.
    case kubectl
}

/// `--kubeconfig --context --namespace --backend`: how every cluster command reaches the cluster.
struct ClusterOptions: ParsableArguments {
    @Option(help: "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the pod's service account).")
    var kubeconfig: String?

    @Option(help: "kubeconfig context (default: its current-context).")
    var context: String?

    @Option(help: "Namespace (default: the context's, else 'default').")
    var namespace: String?

    @Option(help: "How to reach the cluster: api (libcurl, direct) or kubectl (the kubectl binary on PATH).")
    var backend: BackendChoice = .api

    /// The resolved configuration and a backend for it; kubeconfig problems end the command with their exit code.
    func connect() throws -> (KubeConfiguration, any KubeAPI) {
        let configuration: KubeConfiguration
        do {
            configuration = try KubeConfigLoader().load(.init(kubeconfig: kubeconfig, context: context, namespace: namespace))
        } catch let error as KubeConfigError {
            throw error.kverifyError
        }
        switch backend {
        case .api: return (configuration, RESTBackend(configuration: configuration))
        case .kubectl: return (configuration, KubectlBackend(configuration: configuration))
        }
    }
}

extension KVerify {
    /// `kverify preflight`: can kverify work against this cluster at all?
    public struct Preflight: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "preflight",
            abstract: "Check that the cluster is reachable, has enough Ready nodes, and grants kverify's permissions.",
            discussion: """
                Checks: the API server answers (version); every node's Ready status, roles and taints; with --nodes N, \
                at least N Ready nodes that ordinary pods can be scheduled on; and, through SelfSubjectAccessReview, \
                each permission kverify needs in the namespace.

                EXIT CODES
                  0  ready
                  1  not enough schedulable Ready nodes, or a permission is missing
                  2  usage or kubeconfig error (missing file, unknown context, malformed YAML)
                  3  cluster unreachable, TLS or authentication failure, or timeout
                """)

        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var output: OutputOptions

        @Option(help: "Require at least this many schedulable Ready nodes.")
        var nodes: Int?

        public init() {}

        /// The permissions kverify's verification flows use.
        static func permissions(namespace: String) -> [SelfSubjectAccessReview.ResourceAttributes] {
            [
                .init(verb: "list", resource: "nodes"),
                .init(verb: "create", resource: "namespaces"),
                .init(verb: "patch", group: "apps", resource: "daemonsets", namespace: namespace),
                .init(verb: "delete", group: "apps", resource: "daemonsets", namespace: namespace),
                .init(verb: "watch", resource: "pods", namespace: namespace),
                .init(verb: "get", resource: "pods", subresource: "log", namespace: namespace),
                .init(verb: "get", resource: "pods", subresource: "proxy", namespace: namespace),
                .init(verb: "list", resource: "events", namespace: namespace),
            ]
        }

        public func validate() throws {
            if let nodes, nodes < 0 { throw ValidationError("--nodes must be 0 or more, got \(nodes)") }
        }

        public func run() async throws {
            let (configuration, api) = try cluster.connect()
            var report = Report(target: "preflight \(configuration.cluster.server) (context \(configuration.contextName))")
            do {
                let version = try await report.timed("version") { try await api.serverVersion() }
                report.findings.append(.pass("cluster.reachable", subject: configuration.cluster.server, observed: "Kubernetes \(version.gitVersion)"))
                let nodeList = try await report.timed("nodes") { try await api.nodes() }
                report.findings += Self.nodeFindings(nodeList, required: nodes)
                let checks = Self.permissions(namespace: configuration.namespace)
                let permissions = try await report.timed("permissions") {
                    var findings: [Finding] = []
                    for attributes in checks { findings.append(try await Self.permissionFinding(api, attributes)) }
                    return findings
                }
                report.findings += permissions
            } catch let error as KubeError {
                // No verdict is possible; say which failure it was and what to do.
                let status: ExitStatus = error.exitStatus == .checkFailed ? .unreachable : error.exitStatus
                throw KVerifyError(status, "preflight: \(error.message)")
            }
            try output.finish(report)
        }

        static func nodeFindings(_ nodes: [Node], required: Int?) -> [Finding] {
            var findings: [Finding] = []
            for node in nodes {
                let name = node.metadata.name ?? "<unnamed>"
                let roles = node.roles.isEmpty ? "<none>" : node.roles.joined(separator: ",")
                let taints = node.spec?.taints.map(\.summary) ?? []
                let observed = "Ready=\(node.status?.conditions["Ready"]?.status.rawValue ?? "missing"), roles \(roles)"
                    + (taints.isEmpty ? "" : ", taints \(taints.joined(separator: " "))")
                    + (node.spec?.unschedulable == true ? ", cordoned" : "")
                if node.isReady {
                    findings.append(.pass("node.ready", subject: "node/\(name)", expected: "Ready=True", observed: observed))
                } else {
                    findings.append(.warn("node.ready", subject: "node/\(name)", expected: "Ready=True", observed: observed,
                                          detail: node.status?.conditions["Ready"]?.message))
                }
            }
            let schedulable = nodes.filter(\.isSchedulable).count
            if let required {
                let names = nodes.filter(\.isSchedulable).compactMap(\.metadata.name).joined(separator: ", ")
                let observed = "\(schedulable) of \(nodes.count)" + (names.isEmpty ? "" : " (\(names))")
                if schedulable >= required {
                    findings.append(.pass("nodes.schedulable", expected: "at least \(required)", observed: observed))
                } else {
                    findings.append(.fail(
                        "nodes.schedulable", expected: "at least \(required) Ready nodes without NoSchedule/NoExecute taints",
                        observed: observed, detail: "add nodes (kind: more worker nodes in the cluster config) or uncordon/untaint them"))
                }
            }
            return findings
        }

        static func permissionFinding(_ api: any KubeAPI, _ attributes: SelfSubjectAccessReview.ResourceAttributes) async throws -> Finding {
            let subject = attributes.summary
            let answer: Bool?
            do {
                answer = try await api.canI(attributes)
            } catch let error as KubeError where error.code == .forbidden {
                return .warn("rbac.permission", subject: subject, expected: "allowed", observed: "cannot ask (SelfSubjectAccessReview forbidden)")
            }
            switch answer {
            case true?: return .pass("rbac.permission", subject: subject, expected: "allowed", observed: "allowed")
            case false?:
                return .fail("rbac.permission", subject: subject, expected: "allowed", observed: "denied",
                             detail: "grant it with a Role/ClusterRole bound to the kubeconfig's user")
            case nil:
                return .warn("rbac.permission", subject: subject, expected: "allowed",
                             observed: "unknown: the server has no SelfSubjectAccessReview API")
            }
        }
    }
}
