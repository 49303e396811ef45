import Foundation
import Synchronization
import SimFaults
import SimStore
import KubeModel
import Logging
import NIOCore
import Processes

#if canImport(Glibc)
import Glibc
#endif

/// The sim's kubelet for every node: runs each bound pod's containers as real processes (or stubs), probes them,
/// restarts them with CrashLoopBackOff back-off, captures their output for `pods/log`, and writes pod status the
/// way the real kubelet does. Pods are followed through a store watch; a deleted pod's processes get SIGTERM,
/// then SIGKILL after its grace period.
package final class Kubelet: Sendable {
    package struct Settings: Sendable {
        package var runtime: RuntimeMap?
        /// Why there is no runtime map, for the pull failure every image then gets.
        package var runtimeProblem: String
        package var shim: String?
        package var podsDirectory: URL
        package var logDirectory: URL
        package var hostsDirectory: URL
        /// Upper bound on a pod's termination grace; nil honours the pod's own, as a kubelet does (a cap would kill an
        /// app that drains for longer than it, and fail a shutdown check a real node passes).
        package var maxGrace: Duration?

        /// `grace`, within `maxGrace` when one is set.
        func bounded(_ grace: Duration) -> Duration { maxGrace.map { min(grace, $0) } ?? grace }

        package init(runtime: RuntimeMap?, runtimeProblem: String, shim: String?, podsDirectory: URL, logDirectory: URL,
                     hostsDirectory: URL) {
            self.runtime = runtime
            self.runtimeProblem = runtimeProblem
            self.shim = shim
            self.podsDirectory = podsDirectory
            self.logDirectory = logDirectory
            self.hostsDirectory = hostsDirectory
        }
    }

    let store: ObjectStore
    let network: SimNetwork
    let faults: FaultSwitch
    let group: any EventLoopGroup
    let settings: Settings
    let events: EventRecorder
    let logger: Logger
    let probes: ProbeClient
    private let workers = Mutex<[String: PodWorker]>([:])
    /// Workers of deleted pods, still stopping. `stopAll` waits for them too: a worker probes through the sim's
    /// event loops, and one still running when those shut down is a crash (NIO's leaked promise), not a clean stop.
    private let retiring = Mutex<[String: Task<Void, Never>]>([:])
    private let lostNodes = Mutex<Set<String>>([])
    static let pods = ResourceCatalog.all[2]

    package init(store: ObjectStore, network: SimNetwork, faults: FaultSwitch, group: any EventLoopGroup, settings: Settings,
         events: EventRecorder, logger: Logger) {
        self.store = store
        self.network = network
        self.faults = faults
        self.group = group
        self.settings = settings
        self.events = events
        self.logger = logger
        self.probes = ProbeClient(group: group)
    }

    /// Follows pods until cancelled, then stops every pod it started.
    package func run() async {
        let subscription = store.watchFromCurrentState(Self.pods)
        await withTaskCancellationHandler {
            for await event in subscription.events {
                guard let uid = event.object.string(at: "metadata", "uid") else { continue }
                if event.type != .deleted, event.object.string(at: "metadata", "deletionTimestamp") != nil {
                    terminate(event.object, uid: uid)
                    continue
                }
                if event.type == .deleted {
                    if let worker = workers.withLock({ $0.removeValue(forKey: uid) }) {
                        let stopping = Task(executorPreference: SimExecutor.shared) {
                            await worker.stop()
                            self.retiring.withLock { _ = $0.removeValue(forKey: uid) }
                        }
                        retiring.withLock { $0[uid] = stopping }
                    }
                } else if let node = event.object.string(at: "spec", "nodeName"), !node.isEmpty,
                          event.object.string(at: "status", "phase") != "Succeeded", event.object.string(at: "status", "phase") != "Failed" {
                    let started: PodWorker? = workers.withLock { workers in
                        guard workers[uid] == nil else { return nil }
                        let worker = PodWorker(pod: event.object, kubelet: self)
                        workers[uid] = worker
                        return worker
                    }
                    if let started {
                        if lostNodes.withLock({ $0.contains(node) }) { started.nodeLost() }
                        started.start()
                    }
                }
            }
        } onCancel: {
            subscription.cancel()
        }
        await stopAll()
    }

    /// A pod marked for graceful deletion: its containers are stopped within its grace period (`PodWorker.terminate`),
    /// then the pod is removed, as the kubelet finishes a deletion with a delete of grace 0.
    private func terminate(_ pod: JSONValue, uid: String) {
        guard let worker = workers.withLock({ $0.removeValue(forKey: uid) }) else { return }
        let grace = Duration.seconds(pod.value(at: ["metadata", "deletionGracePeriodSeconds"])?.intValue ?? 30)
        let namespace = pod.string(at: "metadata", "namespace"), name = pod.string(at: "metadata", "name") ?? ""
        let stopping = Task(executorPreference: SimExecutor.shared) {
            await worker.terminate(grace: grace)
            var options = DeleteOptions()
            options.gracePeriodSeconds = 0
            options.preconditionUID = uid
            _ = try? self.store.delete(Self.pods, namespace: namespace, name: name, options: options)
            // What is left (execs, stubs, the address, directories and logs) goes once the pod is gone: its logs stay
            // readable while it is Terminating.
            await worker.stop(grace: .zero)
            self.retiring.withLock { _ = $0.removeValue(forKey: uid) }
        }
        retiring.withLock { $0[uid] = stopping }
    }

    func stopAll() async {
        let all = workers.withLock { workers in
            defer { workers.removeAll() }
            return Array(workers.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for worker in all { group.addTask { await worker.stop(grace: .milliseconds(500)) } }
        }
        for stopping in retiring.withLock({ Array($0.values) }) { await stopping.value }
    }

    /// A node stopped reporting (fault): its pods turn unready, as the node lifecycle controller marks them.
    package func markNodeLost(_ node: String) {
        lostNodes.withLock { _ = $0.insert(node) }
        for worker in workers.withLock({ Array($0.values) }) where worker.nodeName == node { worker.nodeLost() }
    }

    var runningPodCount: Int { workers.withLock { $0.count } }

    private func worker(namespace: String, pod: String) throws -> PodWorker {
        guard let worker = workers.withLock({ $0.values.first { $0.namespace == namespace && $0.name == pod } }) else {
            throw APIError.badRequest("unable to upgrade connection: pod \(pod) does not run on any node of the sim yet")
        }
        return worker
    }

    /// Runs `command` in a running container of a pod (kubectl exec). The caller reads its output, waits for its exit
    /// and then calls `execEnded`.
    /// - Throws: `APIError` when the pod or container does not run, or the command cannot be started.
    package func exec(namespace: String, pod: String, container: String, command: [String]) throws -> (InteractiveProcess, ended: @Sendable () -> Void) {
        let worker = try worker(namespace: namespace, pod: pod)
        let process = try worker.exec(container: container, command: command)
        return (process, { worker.execEnded(process) })
    }

    /// Follows a running container's output and stdin (kubectl attach, kubectl run -i).
    /// - Throws: `APIError` when the container does not run.
    package func attach(namespace: String, pod: String, container: String) throws -> Attachment {
        try worker(namespace: namespace, pod: pod).attach(container: container)
    }
}

/// A client attached to a running container.
package struct Attachment: Sendable {
    /// The container's output (stdout and stderr share its log) until its process exits.
    package var output: AsyncStream<[UInt8]>
    /// Nil unless the container was created with `stdin: true`.
    package var writeStdin: (@Sendable ([UInt8]) -> Void)?
    /// The client's stdin ended: EOF to the container when its spec says `stdinOnce`.
    package var closeStdin: @Sendable () -> Void
    package var exitCode: @Sendable () async -> Int32
    /// The client went away: stop following (the container keeps running).
    package var stop: @Sendable () -> Void
}

/// One pod on its node: sandbox (address, directories), init containers in order, then every container with its
/// probes and restarts.
package final class PodWorker: Sendable {
    let pod: JSONValue
    let uid: String
    let namespace: String
    let name: String
    let nodeName: String
    private let kubelet: Kubelet
    private let model: Mutex<PodStatusModel>
    private let processes = Mutex<[String: ContainerProcess]>([:])
    private let stubs = Mutex<[String: StubServer]>([:])
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let address = Mutex<String?>(nil)
    /// How this pod's containers are launched (set once the sandbox has its address); exec reuses it.
    private let environment = Mutex<PodEnvironment?>(nil)
    /// The last instance of each `stdinOnce` container that exited, so `kubectl run -i` attaching just after a quick
    /// command ended still gets its output and exit (a deliberate sim choice; containerd would refuse the attach and
    /// kubectl would fall back to the log with a warning).
    private let exitedStdinOnce = Mutex<[String: ContainerProcess]>([:])
    /// Processes started by exec, killed with the pod.
    private let execs = Mutex<[pid_t: InteractiveProcess]>([:])
    private let directory: URL

    init(pod: JSONValue, kubelet: Kubelet) {
        self.pod = pod
        self.kubelet = kubelet
        uid = pod.string(at: "metadata", "uid") ?? ""
        namespace = pod.string(at: "metadata", "namespace") ?? "default"
        name = pod.string(at: "metadata", "name") ?? ""
        nodeName = pod.string(at: "spec", "nodeName") ?? ""
        directory = kubelet.settings.podsDirectory.appendingPathComponent(Self.fileName(namespace, name, uid))
        func containers(_ field: String) -> [PodStatusModel.Container] {
            (pod.value(at: ["spec", field])?.arrayValue ?? []).map {
                PodStatusModel.Container(name: $0["name"]?.stringValue ?? "", image: $0["image"]?.stringValue ?? "")
            }
        }
        var model = PodStatusModel(initContainers: containers("initContainers"), containers: containers("containers"))
        if !model.initContainers.isEmpty {
            for index in model.containers.indices { model.containers[index].state = .waiting(reason: "PodInitializing", message: nil) }
        }
        self.model = Mutex(model)
    }

    var restartPolicy: String { pod.string(at: "spec", "restartPolicy") ?? "Always" }
    var hostNetwork: Bool { pod.value(at: ["spec", "hostNetwork"]) == .bool(true) }

    func start() {
        task.withLock { $0 = Task(executorPreference: SimExecutor.shared) { await self.run() } }
    }

    func nodeLost() {
        update { $0.nodeLost = true }
    }

    /// Graceful deletion, as the kubelet does it: the pod's run ends (nothing restarts), a Killing event per running
    /// container, SIGTERM to every container's main process at once and SIGKILL to its group after `grace` (bounded by
    /// `Settings.maxGrace` when set); each exit goes into the pod's status as `state.terminated` (0: Completed, else Error; 137
    /// when killed), and the phase turns terminal, before the kubelet removes the pod.
    func terminate(grace: Duration) async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
        let all = processes.withLock { processes in
            defer { processes.removeAll() }
            return processes
        }
        for name in all.keys.sorted() {
            kubelet.events.record(pod, reason: "Killing", message: "Stopping container \(name)", component: "kubelet", host: nodeName,
                                  fieldPath: "spec.containers{\(name)}")
        }
        let bounded = kubelet.settings.bounded(grace)
        let exits = await withTaskGroup(of: (String, Int32).self) { group in
            for (name, process) in all { group.addTask { (name, await process.stop(grace: bounded)) } }
            var codes: [String: Int32] = [:]
            for await (name, code) in group { codes[name] = code }
            return codes
        }
        let finished = ObjectStore.now()
        update { model in
            model.deleted = true
            for index in model.containers.indices {
                guard let code = exits[model.containers[index].name] else { continue }
                var startedAt = finished
                if case .running(let started) = model.containers[index].state { startedAt = started }
                model.containers[index].state = .terminated(.init(exitCode: code, reason: code == 0 ? "Completed" : "Error", message: nil,
                                                                  startedAt: startedAt, finishedAt: finished))
                model.containers[index].ready = false
            }
        }
    }

    /// Stops the pod: the run ends, every process gets SIGTERM and, after the grace period, SIGKILL.
    func stop(grace: Duration? = nil) async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
        let specGrace = Duration.seconds(pod.value(at: ["spec", "terminationGracePeriodSeconds"])?.intValue ?? 30)
        let bounded = kubelet.settings.bounded(grace ?? specGrace)
        let all = processes.withLock { processes in
            defer { processes.removeAll() }
            return Array(processes.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for process in all { group.addTask { _ = await process.stop(grace: bounded) } }
        }
        for exec in execs.withLock({ execs in defer { execs.removeAll() }; return Array(execs.values) }) {
            exec.kill()
            _ = await exec.waitForExit()
        }
        for stub in stubs.withLock({ Array($0.values) }) { await stub.stop() }
        if let address = address.withLock({ $0 }), !hostNetwork { kubelet.network.releasePodAddress(address) }
        try? FileManager.default.removeItem(at: directory)
        for container in (pod.value(at: ["spec", "containers"])?.arrayValue ?? []) + (pod.value(at: ["spec", "initContainers"])?.arrayValue ?? []) {
            let log = logFile(container["name"]?.stringValue ?? "")
            try? FileManager.default.removeItem(atPath: log)
            try? FileManager.default.removeItem(atPath: log + ".previous")
        }
    }

    // MARK: The pod's life

    private func run() async {
        do {
            // Not withIntermediateDirectories: a pod started while the sim stops must not recreate its removed state
            // directory (seen: an ownerless /tmp/kverify-sim-*/pods left behind).
            if !FileManager.default.fileExists(atPath: directory.path) {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
            }
            guard let hostIP = kubelet.nodeAddress(nodeName) else { throw SimError("node \(nodeName) has no InternalIP") }
            let podIP = hostNetwork ? hostIP : try kubelet.network.allocatePodAddress()
            address.withLock { $0 = podIP }
            update {
                $0.podIP = podIP
                $0.hostIP = hostIP
            }
            let initContainers = pod.value(at: ["spec", "initContainers"])?.arrayValue ?? []
            let containers = pod.value(at: ["spec", "containers"])?.arrayValue ?? []
            let environment = PodEnvironment(pod: pod, podIP: podIP, hostIP: hostIP, podDirectory: directory, store: kubelet.store,
                                             serviceVariables: kubelet.serviceVariables(namespace: namespace),
                                             hostsFile: kubelet.settings.hostsDirectory.appendingPathComponent("\(namespace).hosts").path,
                                             shim: kubelet.settings.shim)
            self.environment.withLock { $0 = environment }
            for (index, container) in initContainers.enumerated() {
                guard let entry = await pull(container, index: index, isInit: true) else { return }
                await runContainer(container, index: index, isInit: true, entry: entry, environment: environment)
                if Task.isCancelled { return }
            }
            update { $0.refresh(initialized: true, restartPolicy: restartPolicy) }
            await withTaskGroup(of: Void.self) { group in
                for (index, container) in containers.enumerated() {
                    group.addTask {
                        guard let entry = await self.pull(container, index: index, isInit: false) else { return }
                        await self.runContainer(container, index: index, isInit: false, entry: entry, environment: environment)
                    }
                }
            }
        } catch {
            kubelet.events.record(pod, type: "Warning", reason: "FailedCreatePodSandBox", message: "\(error)", component: "kubelet", host: nodeName)
            kubelet.logger.warning("pod \(namespace)/\(name): \(error)")
        }
    }

    /// "Pulls" the image: finds its runtime entry. Without one (or with an injected pull fault) the container
    /// waits in ErrImagePull, then ImagePullBackOff, and is retried with back-off. Returns nil when cancelled.
    private func pull(_ container: JSONValue, index: Int, isInit: Bool) async -> RuntimeMap.Entry? {
        let image = container["image"]?.stringValue ?? ""
        let containerName = container["name"]?.stringValue ?? ""
        let fieldPath = "spec.\(isInit ? "initContainers" : "containers"){\(containerName)}"
        var backoff = Duration.seconds(5)
        while !Task.isCancelled {
            let faulted = kubelet.faults.plan.pullFails(image: image, container: containerName, namespace: namespace)
            if !faulted, let entry = kubelet.settings.runtime?.entry(for: image) {
                kubelet.events.record(pod, reason: "Pulled", message: "Container image \"\(image)\" already present on machine",
                                      component: "kubelet", host: nodeName, fieldPath: fieldPath)
                return entry
            }
            let why = faulted ? "kverify sim fault: image pull failure injected for \(image)"
                : kubelet.settings.runtime == nil ? kubelet.settings.runtimeProblem
                : "no entry in the runtime map \(kubelet.settings.runtime!.source) matches this image"
            let message = "failed to pull and unpack image \"\(image)\": \(why)"
            setState(index, isInit: isInit, .waiting(reason: "ErrImagePull", message: message))
            kubelet.events.record(pod, reason: "Pulling", message: "Pulling image \"\(image)\"", component: "kubelet", host: nodeName, fieldPath: fieldPath)
            kubelet.events.record(pod, type: "Warning", reason: "Failed", message: "Failed to pull image \"\(image)\": \(why)",
                                  component: "kubelet", host: nodeName, fieldPath: fieldPath)
            guard (try? await Task.sleep(for: .seconds(1))) != nil else { return nil }
            setState(index, isInit: isInit, .waiting(reason: "ImagePullBackOff", message: "Back-off pulling image \"\(image)\""))
            kubelet.events.record(pod, type: "Warning", reason: "BackOff", message: "Back-off pulling image \"\(image)\"", component: "kubelet", host: nodeName,
                                  fieldPath: fieldPath)
            guard (try? await Task.sleep(for: backoff)) != nil else { return nil }
            backoff = min(backoff * 2, .seconds(300))
        }
        return nil
    }

    /// Runs one container until the pod stops (regular containers) or until it exits 0 (init containers),
    /// restarting it as `restartPolicy` says, with the kubelet's back-off (10 s doubling to 5 min).
    private func runContainer(_ container: JSONValue, index: Int, isInit: Bool, entry: RuntimeMap.Entry, environment: PodEnvironment) async {
        let containerName = container["name"]?.stringValue ?? ""
        let fieldPath = "spec.\(isInit ? "initContainers" : "containers"){\(containerName)}"
        let log = logFile(containerName)
        var backoff = Duration.seconds(10)
        var restartedOnce = false
        while !Task.isCancelled {
            let startedAt = ObjectStore.now()
            let outcome: PodStatusModel.Terminated
            do {
                outcome = try await runOnce(container, index: index, isInit: isInit, entry: entry, environment: environment,
                                            log: log, startedAt: startedAt, fieldPath: fieldPath)
            } catch let error as ContainerConfigError where error.reason != "StartError" {
                setState(index, isInit: isInit, .waiting(reason: error.reason, message: error.message))
                kubelet.events.record(pod, type: "Warning", reason: "Failed", message: "Error: \(error.message)", component: "kubelet",
                                      host: nodeName, fieldPath: fieldPath)
                guard (try? await Task.sleep(for: backoff)) != nil else { return }
                continue
            } catch let error as ContainerConfigError {
                kubelet.events.record(pod, type: "Warning", reason: "Failed", message: "Error: \(error.message)", component: "kubelet",
                                      host: nodeName, fieldPath: fieldPath)
                outcome = .init(exitCode: 128, reason: "StartError", message: error.message, startedAt: startedAt, finishedAt: ObjectStore.now())
            } catch {
                return  // cancelled
            }
            if Task.isCancelled { return }
            let done = isInit ? outcome.exitCode == 0 : restartPolicy == "Never" || (restartPolicy == "OnFailure" && outcome.exitCode == 0)
            if done {
                update { model in
                    model.mutateContainer(index, isInit: isInit) {
                        $0.state = .terminated(outcome)
                        $0.ready = false
                    }
                    model.refresh(initialized: !isInit, restartPolicy: restartPolicy)
                }
                return
            }
            update { model in
                model.mutateContainer(index, isInit: isInit) {
                    $0.lastTerminated = outcome
                    $0.restartCount += 1
                    $0.ready = false
                    $0.started = false
                    $0.state = .terminated(outcome)
                }
                model.refresh(initialized: !isInit, restartPolicy: restartPolicy)
            }
            if restartedOnce {
                let podRef = "\(name)_\(namespace)(\(uid))"
                setState(index, isInit: isInit, .waiting(reason: "CrashLoopBackOff",
                                                         message: "back-off \(Int(backoff.components.seconds))s restarting failed container=\(containerName) pod=\(podRef)"))
                kubelet.events.record(pod, type: "Warning", reason: "BackOff", message: "Back-off restarting failed container \(containerName) in pod \(podRef)",
                                      component: "kubelet", host: nodeName, fieldPath: fieldPath)
                guard (try? await Task.sleep(for: backoff)) != nil else { return }
                backoff = min(backoff * 2, .seconds(300))
            }
            restartedOnce = true
        }
    }

    /// Starts the container once and follows it until it exits or fails its liveness probe.
    private func runOnce(_ container: JSONValue, index: Int, isInit: Bool, entry: RuntimeMap.Entry, environment: PodEnvironment,
                         log: String, startedAt: String, fieldPath: String) async throws -> PodStatusModel.Terminated {
        let containerName = container["name"]?.stringValue ?? ""
        let image = container["image"]?.stringValue ?? ""
        let plan = kubelet.faults.plan
        // The previous instance's output stays readable as `previous`, like the kubelet's log rotation.
        if FileManager.default.fileExists(atPath: log) {
            try? FileManager.default.removeItem(atPath: log + ".previous")
            try? FileManager.default.moveItem(atPath: log, toPath: log + ".previous")
        }
        FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o600])
        let process: ContainerProcess?
        if let metrics = entry.stubMetrics {
            guard !isInit else { return .init(exitCode: 0, reason: "Completed", message: nil, startedAt: startedAt, finishedAt: ObjectStore.now()) }
            let ports = (container["ports"]?.arrayValue ?? []).compactMap { $0["containerPort"]?.intValue }
            let body = (try? Data(contentsOf: URL(fileURLWithPath: metrics))) ?? Data()
            do {
                let stub = try await StubServer.start(address: environment.podIP, ports: ports, metrics: ByteBuffer(bytes: body), group: kubelet.group)
                stubs.withLock { $0[containerName] = stub }
            } catch {
                throw ContainerConfigError(reason: "StartError", message: "stub runtime cannot listen on \(environment.podIP) \(ports): \(error)")
            }
            process = nil
        } else {
            var launch = try environment.launch(container, entry: entry, logFile: log)
            launch.openStdin = container["stdin"] == .bool(true)
            if let crash = plan.crash(image: image, container: containerName, namespace: namespace) {
                // A real process that really crashes, so logs, exit codes and back-off are all genuine.
                launch.executable = "/bin/sh"
                launch.arguments = ["-c", "echo \"kverify sim fault: $0 crashes on start\" >&2; exit \(crash.exitCode)", containerName]
            }
            do {
                process = try ContainerProcess(launch)
            } catch {
                throw ContainerConfigError(reason: "StartError", message: "\(error)")
            }
            processes.withLock { $0[containerName] = process }
        }
        kubelet.events.record(pod, reason: "Created", message: "Created container \(containerName)", component: "kubelet", host: nodeName, fieldPath: fieldPath)
        kubelet.events.record(pod, reason: "Started", message: "Started container \(containerName)", component: "kubelet", host: nodeName, fieldPath: fieldPath)

        let started = ContinuousClock.now
        let startup = isInit ? nil : ProbeSpec(container["startupProbe"])
        let readiness = isInit ? nil : ProbeSpec(container["readinessProbe"])
        let liveness = isInit ? nil : ProbeSpec(container["livenessProbe"])
        let readyAfter = plan.readinessDelay(image: image, container: containerName, namespace: namespace).map { started + $0 }
        var startupState = ProbeState(spec: startup, started: started)
        var readinessState = ProbeState(spec: readiness, started: started)
        var livenessState = ProbeState(spec: liveness, started: started)
        var isStarted = startup == nil
        update { model in
            model.mutateContainer(index, isInit: isInit) {
                $0.state = .running(startedAt: startedAt)
                $0.started = isStarted
                $0.ready = !isInit && isStarted && readiness == nil && readyAfter == nil
            }
            model.refresh(initialized: !isInit, restartPolicy: restartPolicy)
        }
        defer {
            if let stub = stubs.withLock({ $0.removeValue(forKey: containerName) }) {
                Task(executorPreference: SimExecutor.shared) { await stub.stop() }
            }
        }
        while true {
            if let process, let code = process.exitCode {
                // Its orphans (a forked worker) went with it when `exitCode` saw the exit, as with a container's cgroup.
                processes.withLock { _ = $0.removeValue(forKey: containerName) }
                if container["stdinOnce"] == .bool(true) { exitedStdinOnce.withLock { $0[containerName] = process } }
                return .init(exitCode: code, reason: code == 0 ? "Completed" : "Error", message: nil, startedAt: startedAt, finishedAt: ObjectStore.now())
            }
            try await Task.sleep(for: .milliseconds(100))
            let now = ContinuousClock.now
            if !isStarted {
                if let outcome = await startupState.runIfDue(now, self, container, environment) {
                    if outcome == .success, startupState.successes >= 1 {
                        isStarted = true
                        update { $0.mutateContainer(index, isInit: isInit) { $0.started = true } }
                    } else if case .failure(let message) = outcome {
                        kubelet.events.record(pod, type: "Warning", reason: "Unhealthy", message: "Startup probe failed: \(message)",
                                              component: "kubelet", host: nodeName, fieldPath: fieldPath)
                        if startupState.failures >= startup!.failureThreshold { return try await killContainer(process, containerName, startedAt, fieldPath, "failed startup probe") }
                    }
                }
                continue
            }
            if readiness != nil || readyAfter != nil {
                var ready = readinessState.ready
                if readiness == nil {
                    ready = true
                } else if let outcome = await readinessState.runIfDue(now, self, container, environment) {
                    if case .failure(let message) = outcome {
                        kubelet.events.record(pod, type: "Warning", reason: "Unhealthy", message: "Readiness probe failed: \(message)",
                                              component: "kubelet", host: nodeName, fieldPath: fieldPath)
                    }
                    ready = readinessState.ready
                }
                if let readyAfter, now < readyAfter { ready = false }
                let changed = model.withLock { $0.container(index, isInit: isInit).ready != ready }
                if changed {
                    update { model in
                        model.mutateContainer(index, isInit: isInit) { $0.ready = ready }
                        model.refresh(initialized: true, restartPolicy: restartPolicy)
                    }
                }
            }
            if let outcome = await livenessState.runIfDue(now, self, container, environment), case .failure(let message) = outcome {
                kubelet.events.record(pod, type: "Warning", reason: "Unhealthy", message: "Liveness probe failed: \(message)",
                                      component: "kubelet", host: nodeName, fieldPath: fieldPath)
                if livenessState.failures >= liveness!.failureThreshold {
                    return try await killContainer(process, containerName, startedAt, fieldPath, "failed liveness probe")
                }
            }
        }
    }

    private func killContainer(_ process: ContainerProcess?, _ containerName: String, _ startedAt: String, _ fieldPath: String,
                      _ why: String) async throws -> PodStatusModel.Terminated {
        kubelet.events.record(pod, reason: "Killing", message: "Container \(containerName) \(why), will be restarted", component: "kubelet",
                              host: nodeName, fieldPath: fieldPath)
        var code: Int32 = 137
        if let process {
            code = await process.stop(grace: kubelet.settings.bounded(.seconds(pod.value(at: ["spec", "terminationGracePeriodSeconds"])?.intValue ?? 30)))
            processes.withLock { _ = $0.removeValue(forKey: containerName) }
        }
        // The runtime's reason, as containerd reports it: a process that exits 0 on SIGTERM "Completed".
        return .init(exitCode: code, reason: code == 0 ? "Completed" : "Error", message: nil, startedAt: startedAt, finishedAt: ObjectStore.now())
    }

    /// Executes one probe against this pod.
    func probe(_ spec: ProbeSpec, _ container: JSONValue, _ environment: PodEnvironment) async -> ProbeOutcome {
        func port(_ text: String) -> Int? {
            if let number = Int(text) { return number }
            return (container["ports"]?.arrayValue ?? []).first { $0["name"]?.stringValue == text }?["containerPort"]?.intValue
        }
        switch spec.action {
        case .httpGet(let host, let portText, let path, _, let headers):
            guard let number = port(portText) else { return .failure("no port named \(portText.debugDescription) in container") }
            return await kubelet.probes.http(host: host ?? environment.podIP, port: number, path: path, headers: headers, timeout: spec.timeout)
        case .tcpSocket(let host, let portText):
            guard let number = port(portText) else { return .failure("no port named \(portText.debugDescription) in container") }
            return await kubelet.probes.tcp(host: host ?? environment.podIP, port: number, timeout: spec.timeout)
        case .exec(let command):
            return await execProbe(command, container, environment, timeout: spec.timeout)
        }
    }

    private func execProbe(_ command: [String], _ container: JSONValue, _ environment: PodEnvironment, timeout: Duration) async -> ProbeOutcome {
        guard let entry = kubelet.settings.runtime?.entry(for: container["image"]?.stringValue ?? "") else { return .failure("no runtime entry") }
        var probeContainer = container
        probeContainer.set(["command"], to: .array(command.map { .string($0) }))
        probeContainer.set(["args"], to: nil)
        do {
            let launch = try environment.launch(probeContainer, entry: entry, logFile: "/dev/null")
            let process = try ContainerProcess(launch, of: processes.withLock { $0[container["name"]?.stringValue ?? ""] })
            let deadline = ContinuousClock.now + timeout
            while process.exitCode == nil, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            guard let code = process.exitCode else {
                _ = await process.stop(grace: .zero)
                return .failure("command \(command) timed out after \(timeout)")
            }
            return code == 0 ? .success : .failure("command \(command) exited with \(code)")
        } catch {
            return .failure("\(error)")
        }
    }

    // MARK: Exec and attach

    /// The spec of a regular container and its running process.
    private func running(_ containerName: String, orExitedStdinOnce: Bool = false) throws -> (spec: JSONValue, process: ContainerProcess) {
        let containers = pod.value(at: ["spec", "containers"])?.arrayValue ?? []
        guard let spec = containers.first(where: { $0["name"]?.stringValue == containerName }) else {
            throw APIError.badRequest("container \(containerName) is not valid for pod \(name)")
        }
        if orExitedStdinOnce, let exited = exitedStdinOnce.withLock({ $0[containerName] }), processes.withLock({ $0[containerName] }) == nil {
            return (spec, exited)
        }
        guard let process = processes.withLock({ $0[containerName] }), process.exitCode == nil || orExitedStdinOnce else {
            if stubs.withLock({ $0[containerName] }) != nil {
                throw APIError.badRequest("container \(containerName) of pod \(name) runs on the sim's stub runtime, which has no process to exec into or attach to")
            }
            throw APIError.badRequest("unable to upgrade connection: container not found (\"\(containerName)\")")
        }
        return (spec, process)
    }

    /// Starts `command` as the container's own processes start: its environment, working directory, image paths,
    /// network shim and pod address (`PodEnvironment.launch` with the command in place of the image's).
    func exec(container containerName: String, command: [String]) throws -> InteractiveProcess {
        let (spec, container) = try running(containerName)
        guard let environment = environment.withLock({ $0 }),
              let entry = kubelet.settings.runtime?.entry(for: spec["image"]?.stringValue ?? "") else {
            throw APIError.badRequest("unable to upgrade connection: container not found (\"\(containerName)\")")
        }
        var execSpec = spec
        execSpec.set(["command"], to: .array(command.map { .string($0) }))
        execSpec.set(["args"], to: nil)
        let launch: ContainerProcess.Launch
        do {
            launch = try environment.launch(execSpec, entry: entry, logFile: "/dev/null")
        } catch let error as ContainerConfigError {
            throw APIError(code: 500, reason: "InternalError",
                           message: "Internal error occurred: error executing command in container: \(error.message.replacingOccurrences(of: "failed to create containerd task: failed to create shim task: OCI runtime create failed", with: "OCI runtime exec failed"))")
        }
        // Background jobs of the session live on, as on a node, and carry the container's mark: they end with the container.
        var sessionEnvironment = launch.environment
        if let mark = container.mark { sessionEnvironment[EnvironmentMark.variable] = mark.value }
        let process: InteractiveProcess
        do {
            process = try InteractiveProcess(SpawnRequest(command: launch.executable, arguments: launch.arguments, environment: sessionEnvironment,
                                                          workingDirectory: launch.workingDirectory, stdout: .file(path: "/dev/null", append: true)),
                                             killingLeftovers: false)
        } catch {
            throw APIError(code: 500, reason: "InternalError", message: "Internal error occurred: error executing command in container: \(error)")
        }
        execs.withLock { $0[process.pid] = process }
        return process
    }

    func execEnded(_ process: InteractiveProcess) {
        _ = execs.withLock { $0.removeValue(forKey: process.pid) }
    }

    /// Follows a running container: its log from now on (from its start for a `stdinOnce` container, whose client
    /// — `kubectl run -i` — expects the whole output), ending when the process exits; its stdin when it has one.
    func attach(container containerName: String) throws -> Attachment {
        let (spec, process) = try running(containerName, orExitedStdinOnce: true)
        let stdinOnce = spec["stdinOnce"] == .bool(true)
        let log = logFile(containerName)
        let (output, continuation) = AsyncStream<[UInt8]>.makeStream()
        let follow = Task(executorPreference: SimExecutor.shared) {
            defer { continuation.finish() }
            guard let handle = FileHandle(forReadingAtPath: log) else { return }
            defer { try? handle.close() }
            if !stdinOnce { _ = try? handle.seekToEnd() }
            while !Task.isCancelled {
                let exited = process.exitCode != nil
                if let data = try? handle.readToEnd(), !data.isEmpty { continuation.yield([UInt8](data)) }
                if exited { return }
                // A log file has no change notification; the kubelet's own log follower polls too.
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        var writeStdin: (@Sendable ([UInt8]) -> Void)?
        if process.hasStdin { writeStdin = { @Sendable bytes in process.writeStdin(bytes) } }
        let closeStdin: @Sendable () -> Void = { if stdinOnce { process.closeStdin() } }
        let exitCode: @Sendable () async -> Int32 = {
            while true {
                if let code = process.exitCode { return code }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        let stop: @Sendable () -> Void = {
            follow.cancel()
            if stdinOnce { process.closeStdin() }
        }
        return Attachment(output: output, writeStdin: writeStdin, closeStdin: closeStdin, exitCode: exitCode, stop: stop)
    }

    // MARK: Status

    private func setState(_ index: Int, isInit: Bool, _ state: PodStatusModel.State) {
        update { model in
            model.mutateContainer(index, isInit: isInit) { $0.state = state }
        }
    }

    /// Changes the model and writes the pod's status if it differs from what is stored. The write happens under the
    /// model's lock: two containers updating at once must not let the older rendering land last (a container would
    /// then stay unready in the API although the kubelet knows better). Lock order: model, then store.
    private func update(_ change: (inout PodStatusModel) -> Void) {
        model.withLock { model in
            change(&model)
            let initialized = model.initContainers.allSatisfy {
                if case .terminated(let terminated) = $0.state { return terminated.exitCode == 0 } else { return false }
            }
            model.refresh(initialized: initialized, restartPolicy: restartPolicy)
            let status = model.render()
            kubelet.store.modify(Kubelet.pods, namespace: namespace, name: name, manager: "kubelet") { current in
                guard current.string(at: "metadata", "uid") == uid else { return nil }
                var changed = current
                changed.set(["status"], to: status)
                return changed
            }
        }
    }

    private func logFile(_ container: String) -> String {
        kubelet.settings.logDirectory.appendingPathComponent(Self.fileName(namespace, name, uid, suffix: "_\(container).log")).path
    }

    /// `namespace_name_uid8` + `suffix`, within the 255 bytes a file name may have: a pod name may be 253 characters,
    /// so a long one is cut (the uid keeps the name unique).
    static func fileName(_ namespace: String, _ name: String, _ uid: String, suffix: String = "") -> String {
        let fixed = namespace.utf8.count + uid.prefix(8).utf8.count + suffix.utf8.count + 2
        let kept = String(decoding: name.utf8.prefix(max(0, 255 - fixed)), as: UTF8.self)
        return "\(namespace)_\(kept)_\(uid.prefix(8))\(suffix)"
    }
}

/// A probe's schedule and its consecutive results.
package struct ProbeState {
    let spec: ProbeSpec?
    var next: ContinuousClock.Instant
    var successes = 0
    var failures = 0
    var ready = false

    init(spec: ProbeSpec?, started: ContinuousClock.Instant) {
        self.spec = spec
        next = started + (spec?.initialDelay ?? .zero)
    }

    /// Runs the probe when it is due; nil when it was not.
    mutating func runIfDue(_ now: ContinuousClock.Instant, _ worker: PodWorker, _ container: JSONValue,
                           _ environment: PodEnvironment) async -> ProbeOutcome? {
        guard let spec, now >= next else { return nil }
        let outcome = await worker.probe(spec, container, environment)
        // The pod is stopping: a probe cut short by that says nothing, and counted as a liveness failure it killed the
        // container before the graceful stop could record its exit (its final status then had no terminated state).
        if Task.isCancelled { return nil }
        next = ContinuousClock.now + spec.period
        if outcome == .success {
            successes += 1
            failures = 0
            if successes >= spec.successThreshold { ready = true }
        } else {
            failures += 1
            successes = 0
            if failures >= spec.failureThreshold { ready = false }
        }
        return outcome
    }
}

extension PodStatusModel {
    mutating func mutateContainer(_ index: Int, isInit: Bool, _ change: (inout Container) -> Void) {
        if isInit {
            guard initContainers.indices.contains(index) else { return }
            change(&initContainers[index])
        } else {
            guard containers.indices.contains(index) else { return }
            change(&containers[index])
        }
    }

    func container(_ index: Int, isInit: Bool) -> Container {
        isInit ? initContainers[index] : containers[index]
    }
}

extension Kubelet {
    func nodeAddress(_ node: String) -> String? {
        guard let object = try? store.get(ResourceCatalog.all[1], namespace: nil, name: node) else { return nil }
        return object.value(at: ["status", "addresses"])?.arrayValue?.first { $0["type"] == "InternalIP" }?["address"]?.stringValue
    }

    /// enableServiceLinks: `REDIS_SERVICE_SERVICE_HOST=…`, `…_SERVICE_PORT=…` for each Service in the namespace.
    /// The API server's own (`kubernetes` in `default`) comes first for every namespace, as the kubelet's master
    /// service variables do.
    func serviceVariables(namespace: String) -> [(String, String)] {
        var services = store.list(ResourceCatalog.all[3], namespace: namespace).items
        if namespace != "default", let master = try? store.get(ResourceCatalog.all[3], namespace: "default", name: "kubernetes") {
            services.insert(master, at: 0)
        }
        return services.flatMap { service -> [(String, String)] in
            guard let name = service.string(at: "metadata", "name"), let ip = service.string(at: "spec", "clusterIP"), ip != "None",
                  let port = service.value(at: ["spec", "ports"])?.arrayValue?.first?["port"]?.intValue else { return [] }
            let prefix = name.uppercased().replacingOccurrences(of: "-", with: "_")
            return [("\(prefix)_SERVICE_HOST", ip), ("\(prefix)_SERVICE_PORT", String(port))]
        }
    }
}
