import Foundation
import SimNode
import SimAPIServer
import SimControlPlane
import SimFaults
import SimStore
import KubeModel
import Logging
import Processes
import NIOCore
import NIOPosix
import NIOSSL

/// A running simulated cluster: the API server with its PKI, the store, the nodes, and a kubeconfig in kind's shape.
///
/// ```swift
/// let sim = try await SimulatedCluster.start(options: .init(nodes: 3))
/// defer { Task { await sim.stop() } }
/// // kubectl --kubeconfig sim.kubeconfigPath get nodes
/// ```
public final class SimulatedCluster: Sendable {
    /// How to start a sim.
    public struct Options: Sendable {
        /// Number of nodes; node 0 is the control plane (tainted NoSchedule), as in kind.
        public var nodes: Int
        /// 0 picks a free port.
        public var port: Int
        /// Where to write the kubeconfig; nil writes it into the state directory.
        public var kubeconfigPath: String?
        /// State directory (logs, CA certificate); nil creates a temporary one. Removed by `stop()` when created here.
        public var stateDirectory: URL?
        /// Plain HTTP instead of HTTPS with client certificates (for debugging only).
        public var insecureHTTP: Bool
        /// How often a watch that allows bookmarks gets one.
        public var bookmarkInterval: Duration
        /// Events kept for watches to replay; older resourceVersions get 410 Expired.
        public var historyLimit: Int
        /// Who runs the pods: the real kubelet (default), a placeholder that declares them Ready, or nobody.
        public var kubelet: KubeletMode = .processes
        /// `kubelet == .instant`, kept for callers of the earlier API.
        public var instantKubelet: Bool {
            get { kubelet == .instant }
            set { kubelet = newValue ? .instant : .processes }
        }
        /// The runtime map (`sim/runtime.yaml` format); nil finds the repository's (`RuntimeMap.defaultPath`).
        public var runtimePath: String?
        /// Faults to inject from the start (tests can change them later through `faults`).
        public var faults = FaultPlan()
        /// Offer HTTP/2 in the TLS handshake (ALPN `h2`), as kube-apiserver does; false serves HTTP/1.1 only.
        public var http2 = true

        public init(nodes: Int = 1, port: Int = 0, kubeconfigPath: String? = nil, stateDirectory: URL? = nil,
                    insecureHTTP: Bool = false, bookmarkInterval: Duration = .seconds(5), historyLimit: Int = 5000) {
            self.nodes = nodes
            self.port = port
            self.kubeconfigPath = kubeconfigPath
            self.stateDirectory = stateDirectory
            self.insecureHTTP = insecureHTTP
            self.bookmarkInterval = bookmarkInterval
            self.historyLimit = historyLimit
        }
    }

    /// Who runs a sim's pods.
    public enum KubeletMode: Sendable {
        /// Real processes from the runtime map, real probes (the default).
        case processes
        /// Bound pods are declared Running and Ready at once; nothing runs (API-only experiments).
        case instant
        /// No kubelet: pods stay Pending unless a test writes their status itself.
        case none
    }

    public let store: ObjectStore
    public let port: Int
    /// `https://127.0.0.1:PORT`.
    public let serverURL: String
    public let kubeconfigPath: String
    public let stateDirectory: URL
    /// Where container logs are kept (`<namespace>_<pod>_<uid prefix>_<container>.log`).
    public let logDirectory: URL
    public let nodeNames: [String]

    /// The names a sim of `count` nodes gives its nodes, as kind names them.
    public static func nodeNames(_ count: Int) -> [String] { (0..<count).map(nodeName) }
    /// Each node's InternalIP, in `nodeNames` order (loopback addresses of this sim's own /16).
    public let nodeAddresses: [String]
    public let network: SimNetwork
    /// The faults in force; set `faults.plan` to change them while the sim runs (node faults: `makeNodeNotReady`).
    public let faults: FaultSwitch
    /// The PEMs, for clients that do not read the kubeconfig. Never log them.
    public let certificates: SimCertificates?

    private let server: APIServer
    /// What clients negotiated so far: connections by protocol, HTTP/2 streams.
    package var traffic: APIServer.Traffic.Counts { server.traffic.snapshot }
    private let controllers: Task<Void, Never>
    private let kubelet: Kubelet?
    private let kubeletTask: Task<Void, Never>?
    private let services: ServiceNetwork
    private let nodeFaults: Task<Void, Never>
    private let group: MultiThreadedEventLoopGroup
    private let ownsStateDirectory: Bool

    private init(store: ObjectStore, server: APIServer, controllers: Task<Void, Never>, kubelet: Kubelet?, kubeletTask: Task<Void, Never>?,
                 services: ServiceNetwork, nodeFaults: Task<Void, Never>, network: SimNetwork, faults: FaultSwitch,
                 group: MultiThreadedEventLoopGroup, serverURL: String,
                 kubeconfigPath: String, stateDirectory: URL, ownsStateDirectory: Bool, nodeNames: [String],
                 certificates: SimCertificates?) {
        self.store = store
        self.server = server
        self.controllers = controllers
        self.kubelet = kubelet
        self.kubeletTask = kubeletTask
        self.services = services
        self.nodeFaults = nodeFaults
        self.network = network
        self.faults = faults
        self.nodeAddresses = nodeNames.indices.map(network.nodeAddress)
        self.group = group
        self.port = server.port
        self.serverURL = serverURL
        self.kubeconfigPath = kubeconfigPath
        self.stateDirectory = stateDirectory
        self.logDirectory = stateDirectory.appendingPathComponent("logs")
        self.ownsStateDirectory = ownsStateDirectory
        self.nodeNames = nodeNames
        self.certificates = certificates
    }

    /// kind's node names: `kverify-sim-control-plane`, `kverify-sim-worker`, `kverify-sim-worker2`, …
    public static func nodeName(_ index: Int) -> String {
        switch index {
        case 0: return "kverify-sim-control-plane"
        case 1: return "kverify-sim-worker"
        default: return "kverify-sim-worker\(index)"
        }
    }

    /// Starts the API server and returns once it accepts connections.
    /// - Throws: `SimError` for bad options, openssl failures or a port already in use.
    public static func start(options: Options = Options(), logger: Logger = Logger(label: "kverify.sim")) async throws -> SimulatedCluster {
        guard (1...SimNetwork.maxNodes).contains(options.nodes) else {
            throw SimError("--nodes must be between 1 and \(SimNetwork.maxNodes), got \(options.nodes)")
        }
        guard (0...65535).contains(options.port) else { throw SimError("--port must be between 0 and 65535, got \(options.port)") }
        if let problem = options.faults.problem(forNodes: nodeNames(options.nodes)) { throw SimError("faults: \(problem)") }
        // Before anything starts: the sim removes its kubeconfig when it stops, so a file it did not write is never taken.
        if let path = options.kubeconfigPath, let problem = Kubeconfig.overwriteProblem(at: path) { throw SimError(problem) }
        FileLimit.raiseToHardLimit()
        let ownsState = options.stateDirectory == nil
        if ownsState {
            for stale in StateDirectory.removeStale() { logger.info("removed the state of a sim that no longer runs: \(stale.path)") }
        }
        let state = options.stateDirectory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("\(StateDirectory.prefix)\(UUID().uuidString.prefix(8))")
        for directory in ["logs", "pods", "dns"] {
            try FileManager.default.createDirectory(at: state.appendingPathComponent(directory), withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        }
        do {
            if ownsState { try StateDirectory.markOwned(state) }
            var runtime: RuntimeMap?
            var runtimeProblem = ""
            if let path = options.runtimePath {
                runtime = try RuntimeMap.load(path: path)
            } else if let path = RuntimeMap.defaultPath() {
                runtime = try RuntimeMap.load(path: path)
            } else {
                runtimeProblem = "kverify sim found no runtime map (sim/runtime.yaml beside its checkout); pass --runtime FILE"
                logger.warning("\(runtimeProblem): every image will fail to pull")
            }
            let network = try SimNetwork.claim()
            let faults = FaultSwitch(options.faults)
            let store = ObjectStore(historyLimit: options.historyLimit, serviceAddress: network.serviceAddress,
                                    gracefulPodDeletion: options.kubelet == .processes)
            let nodeNames = (0..<options.nodes).map(nodeName)
            let kubernetesIP = try Bootstrap.populate(store, nodeNames: nodeNames, network: network)
            // The server certificate names the `kubernetes` Service too, so in-cluster clients verify it by ClusterIP.
            // openssl runs off the cooperative pool: a test process starts many sims at once, and their waits there
            // starved every other sim's requests.
            let certificates = options.insecureHTTP
                ? nil : try await runBlocking { try SimCertificates.generate(in: state, serviceIP: kubernetesIP) }
            var settings = APIServer.Settings()
            settings.port = options.port
            settings.bookmarkInterval = options.bookmarkInterval
            if let certificates { settings.tls = try tlsContext(certificates, http2: options.http2) }

            settings.faults = faults

            let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
            let logDirectory = state.appendingPathComponent("logs")
            let events = EventRecorder(store: store)
            let hosts = state.appendingPathComponent("dns")
            var kubelet: Kubelet?
            if options.kubelet == .processes {
                let shim = SimPaths.networkShim()
                if shim == nil { logger.warning("the network shim libKVerifySimNet.so was not found beside the executable: pods share the host's ports and cannot resolve Service names") }
                kubelet = Kubelet(store: store, network: network, faults: faults, group: group,
                                  settings: .init(runtime: runtime, runtimeProblem: runtimeProblem, shim: shim,
                                                  podsDirectory: state.appendingPathComponent("pods"), logDirectory: logDirectory,
                                                  hostsDirectory: hosts),
                                  events: events, logger: logger)
            }
            // exec and attach reach the kubelet's processes through the API server's streaming routes.
            settings.streams = kubelet.map(KubeletStreams.init)
            let server: APIServer
            do {
                server = try await APIServer.start(
                    router: { port in
                        APIRouter(store: store, serverAddress: "127.0.0.1:\(port)", logDirectory: logDirectory, defaultWatchSeconds: 1800)
                    }, store: store, settings: settings, group: group, logger: logger)
            } catch {
                try? await group.shutdownGracefully()
                throw SimError("the API server cannot listen on 127.0.0.1:\(options.port): \(error)")
            }
            try Bootstrap.publishAPIServer(store, port: server.port)
            let scheme = certificates == nil ? "http" : "https"
            let url = "\(scheme)://127.0.0.1:\(server.port)"
            let kubeconfig = options.kubeconfigPath ?? state.appendingPathComponent("kubeconfig").path
            try Kubeconfig.write(to: kubeconfig, server: url, certificates: certificates, mark: Kubeconfig.mark(stateDirectory: state))
            logger.info("simulated cluster with \(options.nodes) node(s) listening on \(url)")
            let services = ServiceNetwork(store: store, group: group, hostsDirectory: hosts, logger: logger,
                                          nodePortsUnreachable: options.faults.nodePortsUnreachable)
            let kubeletTask = kubelet.map { kubelet in Task(executorPreference: SimExecutor.shared) { await kubelet.run() } }
            let clusterCA = certificates.map { String(decoding: $0.caCertificatePEM, as: UTF8.self) }
            let controllers = Controllers.start(store: store, instantKubelet: options.instantKubelet, events: events, clusterCA: clusterCA,
                                                 afterEachPass: { await services.reconcile() })
            let nodeFaults = Task(executorPreference: SimExecutor.shared) { [kubelet] in
                await withTaskGroup(of: Void.self) { group in
                    for fault in options.faults.nodeNotReady {
                        group.addTask {
                            guard (try? await Task.sleep(for: fault.after)) != nil else { return }
                            Self.markNodeNotReady(fault.node, store: store, kubelet: kubelet)
                        }
                    }
                }
            }
            return SimulatedCluster(store: store, server: server, controllers: controllers, kubelet: kubelet, kubeletTask: kubeletTask,
                                    services: services, nodeFaults: nodeFaults, network: network, faults: faults,
                                    group: group, serverURL: url, kubeconfigPath: kubeconfig,
                                    stateDirectory: state, ownsStateDirectory: ownsState, nodeNames: nodeNames,
                                    certificates: certificates)
        } catch {
            if ownsState { try? FileManager.default.removeItem(at: state) }
            throw error
        }
    }

    /// Runs `body` with a fresh sim and stops it afterwards, also when `body` throws.
    public static func with<T: Sendable>(options: Options = Options(), _ body: (SimulatedCluster) async throws -> T) async throws -> T {
        let sim = try await start(options: options)
        do {
            let result = try await body(sim)
            await sim.stop()
            return result
        } catch {
            await sim.stop()
            throw error
        }
    }

    /// Stops the server, ends every watch and removes the state this sim created (and the kubeconfig it wrote).
    public func stop() async {
        nodeFaults.cancel()
        kubeletTask?.cancel()
        await kubeletTask?.value
        controllers.cancel()
        await server.stop()
        await controllers.value
        await services.stop()
        try? await group.shutdownGracefully()
        if ownsStateDirectory { try? FileManager.default.removeItem(at: stateDirectory) }
        // Only while it is still this sim's: removing another's would cut its users off.
        if Kubeconfig.writer(at: kubeconfigPath) == Kubeconfig.mark(stateDirectory: stateDirectory) {
            try? FileManager.default.removeItem(atPath: kubeconfigPath)
        }
    }

    /// Makes a node stop reporting, as a failed kubelet does: its Ready condition turns Unknown
    /// (`NodeStatusUnknown`) and the pods on it turn unready. Returns false for an unknown node.
    @discardableResult
    public func makeNodeNotReady(_ node: String) -> Bool {
        Self.markNodeNotReady(node, store: store, kubelet: kubelet)
    }

    @discardableResult
    static func markNodeNotReady(_ node: String, store: ObjectStore, kubelet: Kubelet?) -> Bool {
        let changed = store.modify(ResourceCatalog.all[1], namespace: nil, name: node, manager: "node-lifecycle-controller") { current in
            var changed = current
            let now = ObjectStore.now()
            let conditions = (current.value(at: ["status", "conditions"])?.arrayValue ?? []).map { condition -> JSONValue in
                var condition = condition
                condition.set(["status"], to: "Unknown")
                condition.set(["reason"], to: "NodeStatusUnknown")
                condition.set(["message"], to: "Kubelet stopped posting node status.")
                condition.set(["lastTransitionTime"], to: .string(now))
                return condition
            }
            changed.set(["status", "conditions"], to: .array(conditions))
            return changed
        }
        kubelet?.markNodeLost(node)
        return changed != nil
    }

    static func tlsContext(_ certificates: SimCertificates, http2: Bool) throws -> NIOSSLContext {
        let certificate = try NIOSSLCertificate(bytes: Array(certificates.serverCertificatePEM), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(certificates.serverKeyPEM), format: .pem)
        let authority = try NIOSSLCertificate(bytes: Array(certificates.caCertificatePEM), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        // kind's admin user authenticates with a client certificate.
        // A certificate, when presented, must chain to the sim's CA; in-cluster clients present none and send a
        // ServiceAccount token instead (the API server answers 401 to a request with neither).
        configuration.certificateVerification = .optionalVerification
        configuration.trustRoots = .certificates([authority])
        configuration.minimumTLSVersion = .tlsv12
        // Offered in this order, as kube-apiserver does; the API server configures the connection for what is chosen.
        configuration.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }
}

/// The kubeconfig kind writes: the CA, the client certificate and its key inline, mode 0600.
package enum Kubeconfig {
    static let name = "kind-kverify-sim"

    /// Why the sim will not write its kubeconfig to `path`; nil when it may. A sim killed with SIGKILL leaves its
    /// kubeconfig behind: that one is overwritten. Anything else, such as `~/.kube/config`, would be lost when the sim
    /// removes its kubeconfig at stop, and a running sim's would be taken from its users.
    package static func overwriteProblem(at path: String) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        guard existing.contains("current-context: \(name)\n") else {
            return "the kubeconfig path \(path) holds a file the sim did not write; the sim removes its kubeconfig when it stops, "
                + "so it will not overwrite it: give a new path, such as /tmp/sim.kubeconfig"
        }
        if let writer = writer(at: path), let pid = writer.split(separator: " ").last.flatMap({ pid_t($0) }),
           kill(pid, 0) == 0 || errno == EPERM {
            return "the kubeconfig path \(path) is the kubeconfig of a sim that still runs (process \(pid)); stop that sim first "
                + "(kverify sim down in its directory), or give a new path"
        }
        return nil
    }

    /// The first line of a kubeconfig this sim writes: which sim (its state directory) in which process.
    static func mark(stateDirectory: URL) -> String {
        "# written by kverify sim \(stateDirectory.path) pid \(getpid())"
    }

    /// The mark line of the kubeconfig at `path`, nil when there is none (not a sim's, or an older sim's).
    static func writer(at path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let first = text.split(separator: "\n", maxSplits: 1).first, first.hasPrefix("# written by kverify sim ") else { return nil }
        return String(first)
    }

    static func render(server: String, certificates: SimCertificates?) -> String {
        var cluster = "    server: \(server)\n"
        var user = "  user: {}\n"
        if let certificates {
            cluster = "    certificate-authority-data: \(certificates.caCertificatePEM.base64EncodedString())\n" + cluster
            user = "  user:\n    client-certificate-data: \(certificates.clientCertificatePEM.base64EncodedString())\n"
                + "    client-key-data: \(certificates.clientKeyPEM.base64EncodedString())\n"
        }
        return """
            apiVersion: v1
            clusters:
            - cluster:
            \(cluster)  name: \(name)
            contexts:
            - context:
                cluster: \(name)
                user: \(name)
              name: \(name)
            current-context: \(name)
            kind: Config
            preferences: {}
            users:
            - name: \(name)
            \(user)
            """
    }

    /// Writes the kubeconfig to `path`; `start` has refused a path holding a file a sim did not write
    /// (`overwriteProblem`) before the server listened.
    static func write(to path: String, server: String, certificates: SimCertificates?, mark: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Created empty with 0600 first, so the key is never readable by others even for a moment.
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data((mark + "\n" + render(server: server, certificates: certificates)).utf8))
    }
}

/// The objects a fresh cluster has: the standard namespaces and the nodes.
package enum Bootstrap {
    /// Namespaces, nodes and the `kubernetes` Service; returns the Service's ClusterIP.
    @discardableResult
    static func populate(_ store: ObjectStore, nodeNames: [String], network: SimNetwork) throws -> String {
        let namespaces = ResourceCatalog.all[0], nodes = ResourceCatalog.all[1]
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            try store.create(namespaces, namespace: nil, body: ["metadata": ["name": .string(name)]], manager: "kube-apiserver")
        }
        for (index, name) in nodeNames.enumerated() {
            try store.create(nodes, namespace: nil, body: node(name, index: index, address: network.nodeAddress(index), alone: nodeNames.count == 1),
                             manager: "kubelet")
        }
        // kind's default StorageClass (rancher.io/local-path); PVCs without a class get it.
        let storageClasses = ResourceCatalog.find(kind: "StorageClass", groupVersion: "storage.k8s.io/v1")!
        try store.create(storageClasses, namespace: nil, body: [
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": ["name": "standard", "annotations": ["storageclass.kubernetes.io/is-default-class": "true"]],
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
        ], manager: "kube-apiserver")
        // The API server's own Service, without a selector: its Endpoints (`publishAPIServer`) name the server.
        let service = try store.create(ResourceCatalog.all[3], namespace: "default", body: [
            "apiVersion": "v1", "kind": "Service",
            "metadata": ["name": "kubernetes", "labels": ["component": "apiserver", "provider": "kubernetes"]],
            "spec": ["ports": [["name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443]]],
        ], manager: "kube-apiserver")
        return service.string(at: "spec", "clusterIP") ?? ""
    }

    /// The `kubernetes` Endpoints: the address and port the API server listens on (kube-proxy forwards the
    /// ClusterIP's port 443 there).
    static func publishAPIServer(_ store: ObjectStore, port: Int) throws {
        try store.create(ResourceCatalog.all[4], namespace: "default", body: [
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": ["name": "kubernetes", "labels": ["endpointslice.kubernetes.io/skip-mirror": "true"]],
            "subsets": [["addresses": [["ip": "127.0.0.1"]], "ports": [["name": "https", "port": .number(Double(port)), "protocol": "TCP"]]]],
        ], manager: "kube-apiserver")
    }

    /// A kind node. The control plane is tainted NoSchedule, except on a one-node cluster, where kind removes the
    /// taint so workloads schedule.
    static func node(_ name: String, index: Int, address: String, alone: Bool = false) -> JSONValue {
        var labels: [String: JSONValue] = [
            "kubernetes.io/hostname": .string(name), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
        ]
        var spec: JSONValue = ["podCIDR": .string("10.244.\(index).0/24"), "podCIDRs": [.string("10.244.\(index).0/24")],
                               "providerID": .string("kind://docker/kverify-sim/\(name)")]
        if index == 0 {
            labels["node-role.kubernetes.io/control-plane"] = ""
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
            if !alone { spec.set(["taints"], to: [["key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"]]) }
        }
        let now = ObjectStore.now()
        func condition(_ type: String, _ status: String, _ reason: String, _ message: String) -> JSONValue {
            ["type": .string(type), "status": .string(status), "reason": .string(reason), "message": .string(message),
             "lastHeartbeatTime": .string(now), "lastTransitionTime": .string(now)]
        }
        let capacity: JSONValue = ["cpu": "2", "memory": "24Gi", "pods": "110", "ephemeral-storage": "100Gi"]
        return [
            "apiVersion": "v1", "kind": "Node",
            "metadata": ["name": .string(name), "labels": .object(labels)],
            "spec": spec,
            "status": [
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                // Loopback only (see SimNetwork): processes "on" a node are reachable from this machine and contained.
                "addresses": [["type": "InternalIP", "address": .string(address)],
                              ["type": "Hostname", "address": .string(name)]],
                "capacity": capacity, "allocatable": capacity,
                "nodeInfo": ["kubeletVersion": .string(Discovery.gitVersion), "kubeProxyVersion": .string(Discovery.gitVersion),
                             "containerRuntimeVersion": "kverify-sim://0.1.0", "operatingSystem": "linux", "architecture": "amd64",
                             "osImage": "kverify sim (processes on the host)", "kernelVersion": .string(ProcessInfo.processInfo.operatingSystemVersionString),
                             "machineID": .string(name), "systemUUID": .string(name), "bootID": .string(name)],
            ],
        ]
    }
}
