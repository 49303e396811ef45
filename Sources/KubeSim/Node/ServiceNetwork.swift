import Foundation
import Synchronization
import SimFaults
import SimStore
import KubeModel
import Logging
import NIOCore
import NIOPosix

/// kube-proxy and cluster DNS for the sim. For every Service: a TCP listener on its ClusterIP for each port and,
/// for NodePort Services, one on every node's address at the nodePort; each accepted connection is forwarded to a
/// Ready endpoint chosen round-robin at connect time. Cluster DNS is the hosts file per namespace that the network
/// shim reads (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local` → ClusterIP). Endpoints
/// objects are kept in step for clients that read them.
package final class ServiceNetwork: Sendable {
    let store: ObjectStore
    let group: any EventLoopGroup
    let hostsDirectory: URL
    let logger: Logger
    private let listeners = Mutex<[String: [any Channel]]>([:])  // by "ns/name"
    private let fingerprints = Mutex<[String: String]>([:])
    private let counter = Mutex<Int>(0)
    static let services = ResourceCatalog.all[3]
    static let endpoints = ResourceCatalog.all[4]
    static let pods = ResourceCatalog.all[2]

    /// NodePorts get no listener on the node addresses (`FaultPlan.nodePortsUnreachable`).
    private let nodePortsUnreachable: Bool

    package init(store: ObjectStore, group: any EventLoopGroup, hostsDirectory: URL, logger: Logger, nodePortsUnreachable: Bool = false) {
        self.store = store
        self.group = group
        self.hostsDirectory = hostsDirectory
        self.logger = logger
        self.nodePortsUnreachable = nodePortsUnreachable
    }

    /// Converges listeners, hosts files and Endpoints with the store; called on every Service or pod change.
    package func reconcile() async {
        let services = store.list(Self.services, namespace: nil).items
        writeHostsFiles(services)
        var live = Set<String>()
        for service in services {
            guard let namespace = service.string(at: "metadata", "namespace"), let name = service.string(at: "metadata", "name") else { continue }
            let key = "\(namespace)/\(name)"
            live.insert(key)
            updateEndpoints(service, namespace: namespace, name: name)
            let bindings = self.bindings(service)
            let fingerprint = bindings.map { "\($0.host):\($0.port)>\($0.servicePort)" }.joined(separator: ",")
            guard fingerprints.withLock({ $0[key] }) != fingerprint else { continue }
            await close(key)
            var channels: [any Channel] = []
            for binding in bindings {
                do {
                    channels.append(try await listen(binding, namespace: namespace, service: name))
                } catch {
                    logger.warning("service \(key): cannot listen on \(binding.host):\(binding.port): \(error)")
                }
            }
            listeners.withLock { $0[key] = channels }
            fingerprints.withLock { $0[key] = fingerprint }
        }
        // hostPort: the node's address and that port reach the pod's container port, as the CNI portmap plugin does.
        for pod in store.list(Self.pods, namespace: nil).items where pod.value(at: ["spec", "hostNetwork"]) != .bool(true) {
            guard let podIP = pod.string(at: "status", "podIP"), let hostIP = pod.string(at: "status", "hostIP"),
                  let namespace = pod.string(at: "metadata", "namespace"), let name = pod.string(at: "metadata", "name") else { continue }
            let ports = (pod.value(at: ["spec", "containers"])?.arrayValue ?? []).flatMap { $0["ports"]?.arrayValue ?? [] }
                .compactMap { port -> (Int, Int)? in
                    guard let host = port["hostPort"]?.intValue, let container = port["containerPort"]?.intValue else { return nil }
                    return (host, container)
                }
            guard !ports.isEmpty else { continue }
            let key = "pod:\(namespace)/\(name)"
            live.insert(key)
            let fingerprint = ports.map { "\(hostIP):\($0.0)>\(podIP):\($0.1)" }.joined(separator: ",")
            guard fingerprints.withLock({ $0[key] }) != fingerprint else { continue }
            await close(key)
            var channels: [any Channel] = []
            for (hostPort, containerPort) in ports {
                do {
                    channels.append(try await forward(from: hostIP, port: hostPort) { (podIP, containerPort) })
                } catch {
                    logger.warning("pod \(namespace)/\(name): hostPort \(hostIP):\(hostPort) is taken: \(error)")
                }
            }
            listeners.withLock { $0[key] = channels }
            fingerprints.withLock { $0[key] = fingerprint }
        }
        for key in listeners.withLock({ Array($0.keys) }) where !live.contains(key) {
            await close(key)
            fingerprints.withLock { _ = $0.removeValue(forKey: key) }
        }
    }

    package func stop() async {
        for key in listeners.withLock({ Array($0.keys) }) { await close(key) }
    }

    private func close(_ key: String) async {
        let channels = listeners.withLock { $0.removeValue(forKey: key) } ?? []
        for channel in channels { try? await channel.close() }
    }

    struct Binding {
        var host: String
        var port: Int
        var servicePort: Int
    }

    private func bindings(_ service: JSONValue) -> [Binding] {
        guard let ip = service.string(at: "spec", "clusterIP"), ip != "None", ip.hasPrefix("127.") else { return [] }
        let ports = service.value(at: ["spec", "ports"])?.arrayValue ?? []
        var result = ports.compactMap { port -> Binding? in
            guard let number = port["port"]?.intValue else { return nil }
            return Binding(host: ip, port: number, servicePort: number)
        }
        if !nodePortsUnreachable, ["NodePort", "LoadBalancer"].contains(service.string(at: "spec", "type") ?? "") {
            let nodes = store.list(ResourceCatalog.all[1], namespace: nil).items.compactMap {
                $0.value(at: ["status", "addresses"])?.arrayValue?.first { $0["type"] == "InternalIP" }?["address"]?.stringValue
            }
            for port in ports {
                guard let nodePort = port["nodePort"]?.intValue, let number = port["port"]?.intValue else { continue }
                result += nodes.map { Binding(host: $0, port: nodePort, servicePort: number) }
            }
        }
        return result
    }

    private func listen(_ binding: Binding, namespace: String, service: String) async throws -> any Channel {
        try await forward(from: binding.host, port: binding.port) { [self] in
            self.endpoint(namespace: namespace, service: service, servicePort: binding.servicePort)
        }
    }

    /// Listens on `host:port` and glues each accepted connection to the target `pick` names at that moment
    /// (closing it when there is none).
    private func forward(from host: String, port: Int,
                         to pick: @escaping @Sendable () -> (host: String, port: Int)?) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                guard let target = pick() else { return inbound.close() }
                let bootstrap = ClientBootstrap(group: inbound.eventLoop).connectTimeout(.seconds(5))
                // An endpoint's pod IP needs no resolver.
                let connected = if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
                    bootstrap.connect(to: address)
                } else {
                    bootstrap.connect(host: target.host, port: target.port)
                }
                return connected
                    .flatMap { outbound in
                        let (local, remote) = GlueHandler.matchedPair()
                        return inbound.pipeline.addHandler(local).flatMap {
                            outbound.pipeline.addHandler(remote)
                        }.flatMap {
                            // Reads start only now that both ends are glued; the glue then paces them.
                            inbound.setOption(.autoRead, value: true)
                        }
                    }
                    .flatMapErrorThrowing { error in
                        inbound.close(promise: nil)
                        throw error
                    }
            }
            .bind(host: host, port: port).get()
    }

    /// A Ready pod behind the Service and the target port, round-robin.
    func endpoint(namespace: String, service name: String, servicePort: Int) -> (host: String, port: Int)? {
        guard let service = try? store.get(Self.services, namespace: namespace, name: name) else { return nil }
        if (service.value(at: ["spec", "selector"])?.objectValue ?? [:]).isEmpty {
            return manualEndpoint(service, namespace: namespace, name: name, servicePort: servicePort)
        }
        let endpoints = readyEndpoints(service, namespace: namespace)
        guard !endpoints.isEmpty,
              let port = (service.value(at: ["spec", "ports"])?.arrayValue ?? []).first(where: { $0["port"]?.intValue == servicePort }) else { return nil }
        let turn = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let pod = endpoints[turn % endpoints.count]
        let target: Int?
        switch port["targetPort"] {
        case .string(let named)?: target = try? PodPorts.containerPort(named, in: pod)
        case let value?: target = value.intValue
        case nil: target = servicePort
        }
        guard let ip = pod.string(at: "status", "podIP"), let target else { return nil }
        return (ip, target)
    }

    /// A Service without a selector (`kubernetes` in `default`, or one whose Endpoints a user writes): its
    /// Endpoints object names the addresses, and the port of the same name as the Service port.
    private func manualEndpoint(_ service: JSONValue, namespace: String, name: String, servicePort: Int) -> (host: String, port: Int)? {
        guard let endpoints = try? store.get(Self.endpoints, namespace: namespace, name: name) else { return nil }
        let portName = (service.value(at: ["spec", "ports"])?.arrayValue ?? []).first { $0["port"]?.intValue == servicePort }?["name"]?.stringValue
        let targets = (endpoints["subsets"]?.arrayValue ?? []).flatMap { subset -> [(String, Int)] in
            let ports = subset["ports"]?.arrayValue ?? []
            guard let port = (ports.first { $0["name"]?.stringValue == portName } ?? (ports.count == 1 ? ports.first : nil))?["port"]?.intValue
            else { return [] }
            return (subset["addresses"]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue }.map { ($0, port) }
        }
        guard !targets.isEmpty else { return nil }
        let turn = counter.withLock { value -> Int in
            value += 1
            return value
        }
        return targets[turn % targets.count]
    }

    private func readyEndpoints(_ service: JSONValue, namespace: String) -> [JSONValue] {
        let selector = (service.value(at: ["spec", "selector"])?.objectValue ?? [:]).compactMapValues(\.stringValue)
        guard !selector.isEmpty else { return [] }
        return store.list(Self.pods, namespace: namespace, labels: LabelQuery(matchLabels: selector)).items.filter { pod in
            pod.string(at: "status", "podIP") != nil && pod.string(at: "metadata", "deletionTimestamp") == nil
                && (pod.value(at: ["status", "conditions"])?.arrayValue ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
        }
    }

    private func updateEndpoints(_ service: JSONValue, namespace: String, name: String) {
        let selector = (service.value(at: ["spec", "selector"])?.objectValue ?? [:]).compactMapValues(\.stringValue)
        guard !selector.isEmpty else { return }
        let pods = store.list(Self.pods, namespace: namespace, labels: LabelQuery(matchLabels: selector)).items.filter {
            $0.string(at: "status", "podIP") != nil
        }
        func address(_ pod: JSONValue) -> JSONValue {
            ["ip": .string(pod.string(at: "status", "podIP") ?? ""), "nodeName": .string(pod.string(at: "spec", "nodeName") ?? ""),
             "targetRef": ["kind": "Pod", "namespace": .string(namespace), "name": .string(pod.string(at: "metadata", "name") ?? ""),
                           "uid": .string(pod.string(at: "metadata", "uid") ?? "")]]
        }
        let ready = Set(readyEndpoints(service, namespace: namespace).compactMap { $0.string(at: "metadata", "uid") })
        let ports: [JSONValue] = (service.value(at: ["spec", "ports"])?.arrayValue ?? []).map { port in
            var endpointPort: JSONValue = ["protocol": port["protocol"] ?? "TCP"]
            if let portName = port["name"] { endpointPort.set(["name"], to: portName) }
            switch port["targetPort"] {
            case .string(let named)?: endpointPort.set(["port"], to: .number(Double(pods.lazy.compactMap { try? PodPorts.containerPort(named, in: $0) }.first ?? 0)))
            case let value?: endpointPort.set(["port"], to: value)
            case nil: endpointPort.set(["port"], to: port["port"] ?? 0)
            }
            return endpointPort
        }
        var subset: JSONValue = ["ports": .array(ports)]
        let readyPods = pods.filter { ready.contains($0.string(at: "metadata", "uid") ?? "") }
        let notReady = pods.filter { !ready.contains($0.string(at: "metadata", "uid") ?? "") }
        if !readyPods.isEmpty { subset.set(["addresses"], to: .array(readyPods.map(address))) }
        if !notReady.isEmpty { subset.set(["notReadyAddresses"], to: .array(notReady.map(address))) }
        let subsets: JSONValue = pods.isEmpty ? [] : [subset]
        if store.modify(Self.endpoints, namespace: namespace, name: name, manager: "endpoint-controller", { current in
            var changed = current
            changed.set(["subsets"], to: subsets)
            return changed
        }) == nil, (try? store.get(Self.endpoints, namespace: namespace, name: name)) == nil {
            let labels = service.value(at: ["metadata", "labels"]) ?? [:]
            _ = try? store.create(Self.endpoints, namespace: namespace, body: [
                "apiVersion": "v1", "kind": "Endpoints", "metadata": ["name": .string(name), "labels": labels], "subsets": subsets,
            ], manager: "endpoint-controller")
        }
    }

    /// One hosts file per namespace: its Services by short name, and every Service by qualified name.
    private func writeHostsFiles(_ services: [JSONValue]) {
        var qualified: [String] = []
        var short: [String: [String]] = [:]
        for service in services {
            guard let namespace = service.string(at: "metadata", "namespace"), let name = service.string(at: "metadata", "name"),
                  let ip = service.string(at: "spec", "clusterIP"), ip != "None" else { continue }
            short[namespace, default: []].append("\(name) \(ip)")
            for suffix in ["\(namespace)", "\(namespace).svc", "\(namespace).svc.cluster.local"] { qualified.append("\(name).\(suffix) \(ip)") }
        }
        let namespaces = Set(store.list(ResourceCatalog.all[0], namespace: nil).items.compactMap { $0.string(at: "metadata", "name") })
        for namespace in namespaces.union(short.keys) {
            let text = ((short[namespace] ?? []) + qualified).joined(separator: "\n") + "\n"
            let file = hostsDirectory.appendingPathComponent("\(namespace).hosts")
            if (try? String(contentsOf: file, encoding: .utf8)) == text { continue }
            let temporary = hostsDirectory.appendingPathComponent(".\(namespace).hosts.\(UUID().uuidString.prefix(6))")
            // Written aside and renamed: a pod resolving at that moment reads the old or the new file, never half.
            if FileManager.default.createFile(atPath: temporary.path, contents: Data(text.utf8)) {
                _ = rename(temporary.path, file.path)
            }
        }
    }
}

/// Pipes bytes between two channels, with backpressure (NIO's connect-proxy example, reduced to what the sim needs).
final class GlueHandler: ChannelDuplexHandler, @unchecked Sendable {  // confined to its channel's event loop
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler(), second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerWriteEOF() { context?.close(mode: .output, promise: nil) }
    private func partnerCloseFull() { context?.close(promise: nil) }
    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.partnerWrite(data) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }

    func channelInactive(context: ChannelHandlerContext) { partner?.partnerCloseFull() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
