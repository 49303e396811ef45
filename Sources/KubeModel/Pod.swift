/// `core/v1 Pod`: where it runs, its conditions and every container's state.
public struct Pod: KubeObject, Hashable {
    public static let apiVersion = "v1"
    public static let kind = "Pod"

    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`, or anything newer.
    public struct Phase: OpenEnum {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let pending: Self = "Pending"
        public static let running: Self = "Running"
        public static let succeeded: Self = "Succeeded"
        public static let failed: Self = "Failed"
        public static let unknown: Self = "Unknown"
    }

    public struct ContainerPort: Codable, Hashable, Sendable {
        public var name: String?
        public var containerPort: Int
        public var `protocol`: String?
    }

    public struct Container: Codable, Hashable, Sendable {
        public var name: String
        public var image: String?
        public var ports: [ContainerPort]?
        /// `Always` on an init container makes it a native sidecar.
        public var restartPolicy: String?
    }

    public struct Spec: Codable, Hashable, Sendable {
        public var nodeName: String?
        public var containers: [Container]
        public var initContainers: [Container]?

        private enum CodingKeys: String, CodingKey { case nodeName, containers, initContainers }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            nodeName = try c.decodeIfPresent(String.self, forKey: .nodeName)
            containers = try c.decodeIfPresent([Container].self, forKey: .containers) ?? []
            initContainers = try c.decodeIfPresent([Container].self, forKey: .initContainers)
        }

        /// Init containers with `restartPolicy: Always` run beside the main containers for the pod's life.
        public var sidecars: [Container] { (initContainers ?? []).filter { $0.restartPolicy == "Always" } }
    }

    public struct ContainerState: Codable, Hashable, Sendable {
        public struct Waiting: Codable, Hashable, Sendable {
            /// `ContainerCreating`, `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull`, …
            public var reason: String?
            public var message: String?
        }
        public struct Running: Codable, Hashable, Sendable {
            public var startedAt: String?
        }
        public struct Terminated: Codable, Hashable, Sendable {
            public var exitCode: Int
            public var signal: Int?
            /// `Completed`, `Error`, `OOMKilled`, …
            public var reason: String?
            public var message: String?
            public var finishedAt: String?

            private enum CodingKeys: String, CodingKey { case exitCode, signal, reason, message, finishedAt }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                exitCode = try c.count(.exitCode)
                signal = try c.decodeIfPresent(Int.self, forKey: .signal)
                reason = try c.decodeIfPresent(String.self, forKey: .reason)
                message = try c.decodeIfPresent(String.self, forKey: .message)
                finishedAt = try c.decodeIfPresent(String.self, forKey: .finishedAt)
            }
        }

        public var waiting: Waiting?
        public var running: Running?
        public var terminated: Terminated?
    }

    public struct ContainerStatus: Codable, Hashable, Sendable {
        public var name: String
        public var ready: Bool
        public var started: Bool?
        public var restartCount: Int
        public var image: String?
        public var state: ContainerState?
        public var lastState: ContainerState?

        private enum CodingKeys: String, CodingKey { case name, ready, started, restartCount, image, state, lastState }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            ready = try c.flag(.ready)
            started = try c.decodeIfPresent(Bool.self, forKey: .started)
            restartCount = try c.count(.restartCount)
            image = try c.decodeIfPresent(String.self, forKey: .image)
            state = try c.decodeIfPresent(ContainerState.self, forKey: .state)
            lastState = try c.decodeIfPresent(ContainerState.self, forKey: .lastState)
        }
    }

    public struct Status: Codable, Hashable, Sendable {
        public var phase: Phase?
        public var conditions: [Condition]
        public var containerStatuses: [ContainerStatus]
        public var initContainerStatuses: [ContainerStatus]
        public var podIP: String?
        public var hostIP: String?
        public var reason: String?
        public var message: String?

        private enum CodingKeys: String, CodingKey {
            case phase, conditions, containerStatuses, initContainerStatuses, podIP, hostIP, reason, message
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            phase = try c.decodeIfPresent(Phase.self, forKey: .phase)
            conditions = try c.decodeIfPresent([Condition].self, forKey: .conditions) ?? []
            containerStatuses = try c.decodeIfPresent([ContainerStatus].self, forKey: .containerStatuses) ?? []
            initContainerStatuses = try c.decodeIfPresent([ContainerStatus].self, forKey: .initContainerStatuses) ?? []
            podIP = try c.decodeIfPresent(String.self, forKey: .podIP)
            hostIP = try c.decodeIfPresent(String.self, forKey: .hostIP)
            reason = try c.decodeIfPresent(String.self, forKey: .reason)
            message = try c.decodeIfPresent(String.self, forKey: .message)
        }
    }

    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    /// Ready means the `Ready` condition is `"True"`; phase `Running` alone is not enough.
    public var isReady: Bool { status?.conditions["Ready"]?.status == .true }
}
