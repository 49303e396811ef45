import Foundation
import KubeModel

/// The protobuf field numbers of the Go API types that kubectl and helm send as protobuf (k8s.io/api's
/// `generated.proto`, v1.32), as tables from field number to JSON name and shape. Only the fields a client sets on
/// these kinds are listed; an unknown field number is skipped, as an older server skips a newer field.
///
/// gogo-protobuf writes every non-pointer field, also when empty; JSON omits those (`omitempty`). So an empty string,
/// a zero number, `false` and an empty message are dropped unless the Go field is a pointer (`.optional`), where
/// presence is the value (`replicas: 0`, `emptyDir: {}`).
enum ProtobufSchema {
    indirect enum Shape: Sendable {
        case string, int, bool
        /// A field whose presence matters (a Go pointer): kept when zero, false or empty.
        case optional(Shape)
        case message(String)
        /// An embedded Go struct whose fields JSON inlines (`VolumeSource` in `Volume`, `ProbeHandler` in `Probe`).
        case inline(String)
        case stringMap
        /// `map<string, resource.Quantity>` (`ResourceList`).
        case quantityMap
        case intOrString
        case quantity
    }

    struct Field: Sendable {
        var name: String
        var shape: Shape
        var repeated = false
    }

    typealias Message = [Int: Field]

    static let topLevel: [String: String] = [
        "Deployment": "Deployment", "DaemonSet": "DaemonSet", "ReplicaSet": "ReplicaSet", "Pod": "Pod",
        "Service": "Service", "ServiceAccount": "ServiceAccount", "DeleteOptions": "DeleteOptions",
        "Role": "Role", "ClusterRole": "ClusterRole", "RoleBinding": "RoleBinding", "ClusterRoleBinding": "RoleBinding",
    ]
    static var decodedKinds: String { (["Namespace", "ConfigMap", "Secret"] + topLevel.keys.sorted()).joined(separator: ", ") }

    private static func f(_ name: String, _ shape: Shape, repeated: Bool = false) -> Field { Field(name: name, shape: shape, repeated: repeated) }

    static let messages: [String: Message] = [
        "Deployment": [2: f("spec", .message("DeploymentSpec"))],
        "DeploymentSpec": [
            1: f("replicas", .optional(.int)), 2: f("selector", .message("LabelSelector")),
            3: f("template", .message("PodTemplateSpec")), 4: f("strategy", .message("DeploymentStrategy")),
            5: f("minReadySeconds", .int), 6: f("revisionHistoryLimit", .optional(.int)), 7: f("paused", .bool),
            9: f("progressDeadlineSeconds", .optional(.int)),
        ],
        "DeploymentStrategy": [1: f("type", .string), 2: f("rollingUpdate", .message("RollingUpdate"))],
        "RollingUpdate": [1: f("maxUnavailable", .intOrString), 2: f("maxSurge", .intOrString)],
        "DaemonSet": [2: f("spec", .message("DaemonSetSpec"))],
        "DaemonSetSpec": [
            1: f("selector", .message("LabelSelector")), 2: f("template", .message("PodTemplateSpec")),
            3: f("updateStrategy", .message("DaemonSetUpdateStrategy")), 4: f("minReadySeconds", .int),
            6: f("revisionHistoryLimit", .optional(.int)),
        ],
        "DaemonSetUpdateStrategy": [1: f("type", .string), 2: f("rollingUpdate", .message("RollingUpdate"))],
        "ReplicaSet": [2: f("spec", .message("ReplicaSetSpec"))],
        "ReplicaSetSpec": [
            1: f("replicas", .optional(.int)), 2: f("selector", .message("LabelSelector")),
            3: f("template", .message("PodTemplateSpec")), 4: f("minReadySeconds", .int),
        ],
        "LabelSelector": [1: f("matchLabels", .stringMap), 2: f("matchExpressions", .message("LabelSelectorRequirement"), repeated: true)],
        "LabelSelectorRequirement": [1: f("key", .string), 2: f("operator", .string), 3: f("values", .string, repeated: true)],
        "PodTemplateSpec": [1: f("metadata", .message("ObjectMeta")), 2: f("spec", .message("PodSpec"))],
        "ObjectMeta": [
            1: f("name", .string), 2: f("generateName", .string), 3: f("namespace", .string),
            6: f("resourceVersion", .string), 11: f("labels", .stringMap), 12: f("annotations", .stringMap),
            14: f("finalizers", .string, repeated: true),
        ],
        "Pod": [2: f("spec", .message("PodSpec"))],
        "PodSpec": [
            1: f("volumes", .message("Volume"), repeated: true), 2: f("containers", .message("Container"), repeated: true),
            3: f("restartPolicy", .string), 4: f("terminationGracePeriodSeconds", .optional(.int)),
            5: f("activeDeadlineSeconds", .optional(.int)), 6: f("dnsPolicy", .string), 7: f("nodeSelector", .stringMap),
            8: f("serviceAccountName", .string), 9: f("serviceAccount", .string), 10: f("nodeName", .string),
            11: f("hostNetwork", .bool), 12: f("hostPID", .bool), 13: f("hostIPC", .bool),
            15: f("imagePullSecrets", .message("LocalObjectReference"), repeated: true), 16: f("hostname", .string),
            17: f("subdomain", .string), 19: f("schedulerName", .string),
            20: f("initContainers", .message("Container"), repeated: true),
            21: f("automountServiceAccountToken", .optional(.bool)), 22: f("tolerations", .message("Toleration"), repeated: true),
            24: f("priorityClassName", .string), 30: f("enableServiceLinks", .optional(.bool)),
        ],
        "LocalObjectReference": [1: f("name", .string)],
        "Toleration": [1: f("key", .string), 2: f("operator", .string), 3: f("value", .string), 4: f("effect", .string),
                       5: f("tolerationSeconds", .optional(.int))],
        "Container": [
            1: f("name", .string), 2: f("image", .string), 3: f("command", .string, repeated: true),
            4: f("args", .string, repeated: true), 5: f("workingDir", .string), 6: f("ports", .message("ContainerPort"), repeated: true),
            7: f("env", .message("EnvVar"), repeated: true), 8: f("resources", .message("ResourceRequirements")),
            9: f("volumeMounts", .message("VolumeMount"), repeated: true), 10: f("livenessProbe", .message("Probe")),
            11: f("readinessProbe", .message("Probe")), 13: f("terminationMessagePath", .string),
            14: f("imagePullPolicy", .string), 16: f("stdin", .bool), 17: f("stdinOnce", .bool), 18: f("tty", .bool),
            20: f("terminationMessagePolicy", .string), 22: f("startupProbe", .message("Probe")),
        ],
        "ContainerPort": [1: f("name", .string), 2: f("hostPort", .int), 3: f("containerPort", .int), 4: f("protocol", .string),
                          5: f("hostIP", .string)],
        "EnvVar": [1: f("name", .string), 2: f("value", .string), 3: f("valueFrom", .message("EnvVarSource"))],
        "EnvVarSource": [1: f("fieldRef", .message("ObjectFieldSelector")), 3: f("configMapKeyRef", .message("KeySelector")),
                         4: f("secretKeyRef", .message("KeySelector"))],
        "ObjectFieldSelector": [1: f("apiVersion", .string), 2: f("fieldPath", .string)],
        "KeySelector": [1: f("", .inline("LocalObjectReference")), 2: f("key", .string), 3: f("optional", .optional(.bool))],
        "ResourceRequirements": [1: f("limits", .quantityMap), 2: f("requests", .quantityMap)],
        "VolumeMount": [1: f("name", .string), 2: f("readOnly", .bool), 3: f("mountPath", .string), 4: f("subPath", .string)],
        "Volume": [1: f("name", .string), 2: f("", .inline("VolumeSource"))],
        "VolumeSource": [
            1: f("hostPath", .optional(.message("HostPathVolumeSource"))), 2: f("emptyDir", .optional(.message("EmptyDirVolumeSource"))),
            6: f("secret", .optional(.message("SecretVolumeSource"))),
            10: f("persistentVolumeClaim", .optional(.message("PVCVolumeSource"))),
            19: f("configMap", .optional(.message("ConfigMapVolumeSource"))),
        ],
        "HostPathVolumeSource": [1: f("path", .string), 2: f("type", .optional(.string))],
        "EmptyDirVolumeSource": [1: f("medium", .string), 2: f("sizeLimit", .quantity)],
        "SecretVolumeSource": [1: f("secretName", .string), 3: f("defaultMode", .optional(.int)), 4: f("optional", .optional(.bool))],
        "PVCVolumeSource": [1: f("claimName", .string), 2: f("readOnly", .bool)],
        "ConfigMapVolumeSource": [1: f("", .inline("LocalObjectReference")), 3: f("defaultMode", .optional(.int)),
                                  4: f("optional", .optional(.bool))],
        "Probe": [
            1: f("", .inline("ProbeHandler")), 2: f("initialDelaySeconds", .int), 3: f("timeoutSeconds", .int),
            4: f("periodSeconds", .int), 5: f("successThreshold", .int), 6: f("failureThreshold", .int),
        ],
        "ProbeHandler": [1: f("exec", .optional(.message("ExecAction"))), 2: f("httpGet", .optional(.message("HTTPGetAction"))),
                         3: f("tcpSocket", .optional(.message("TCPSocketAction")))],
        "ExecAction": [1: f("command", .string, repeated: true)],
        "HTTPGetAction": [1: f("path", .string), 2: f("port", .intOrString), 3: f("host", .string), 4: f("scheme", .string)],
        "TCPSocketAction": [1: f("port", .intOrString), 2: f("host", .string)],
        "Service": [2: f("spec", .message("ServiceSpec"))],
        "ServiceSpec": [
            1: f("ports", .message("ServicePort"), repeated: true), 2: f("selector", .stringMap), 3: f("clusterIP", .string),
            4: f("type", .string), 7: f("sessionAffinity", .string), 10: f("externalName", .string),
            11: f("externalTrafficPolicy", .string), 13: f("publishNotReadyAddresses", .bool),
            18: f("clusterIPs", .string, repeated: true),
        ],
        "ServicePort": [1: f("name", .string), 2: f("protocol", .string), 3: f("port", .int), 4: f("targetPort", .intOrString),
                        5: f("nodePort", .int), 6: f("appProtocol", .optional(.string))],
        "ServiceAccount": [3: f("automountServiceAccountToken", .optional(.bool))],
        "DeleteOptions": [
            1: f("gracePeriodSeconds", .optional(.int)), 2: f("preconditions", .message("Preconditions")),
            3: f("orphanDependents", .optional(.bool)), 4: f("propagationPolicy", .optional(.string)),
            5: f("dryRun", .string, repeated: true),
        ],
        "Preconditions": [1: f("uid", .optional(.string)), 2: f("resourceVersion", .optional(.string))],
        // rbac.authorization.k8s.io/v1 (`kubectl create role|clusterrole|rolebinding|clusterrolebinding`).
        "Role": [2: f("rules", .message("PolicyRule"), repeated: true)],
        "ClusterRole": [2: f("rules", .message("PolicyRule"), repeated: true), 3: f("aggregationRule", .optional(.message("AggregationRule")))],
        "AggregationRule": [1: f("clusterRoleSelectors", .message("LabelSelector"), repeated: true)],
        "PolicyRule": [
            1: f("verbs", .string, repeated: true), 2: f("apiGroups", .string, repeated: true), 3: f("resources", .string, repeated: true),
            4: f("resourceNames", .string, repeated: true), 5: f("nonResourceURLs", .string, repeated: true),
        ],
        "RoleBinding": [2: f("subjects", .message("Subject"), repeated: true), 3: f("roleRef", .message("RoleRef"))],
        "Subject": [1: f("kind", .string), 2: f("apiGroup", .string), 3: f("name", .string), 4: f("namespace", .string)],
        "RoleRef": [1: f("apiGroup", .string), 2: f("kind", .string), 3: f("name", .string)],
    ]

    /// Decodes one message as JSON by its table; the result is always an object.
    static func decode(_ bytes: ArraySlice<UInt8>, as name: String) throws -> JSONValue {
        guard let table = messages[name] else { return .object([:]) }
        var object: [String: JSONValue] = [:]
        for (number, values) in try ProtobufBody.fields(bytes).sorted(by: { $0.key < $1.key }) {
            guard let field = table[number] else { continue }
            if case .inline(let inner) = field.shape {
                for value in values {
                    guard let inlined = value.bytes, case .object(let members) = try decode(inlined, as: inner) else { continue }
                    object.merge(members) { $1 }
                }
                continue
            }
            if case .stringMap = field.shape {
                if let map = try ProtobufBody.map(values), map.objectValue?.isEmpty == false { object[field.name] = map }
                continue
            }
            if case .quantityMap = field.shape {
                var map: [String: JSONValue] = [:]
                for entry in values {
                    guard let pair = entry.bytes.map({ try? ProtobufBody.fields($0) }) ?? nil else { continue }
                    let key = pair[1]?.first?.string ?? ""
                    let quantity = try pair[2]?.first?.bytes.map { try ProtobufBody.fields($0)[1]?.first?.string ?? "" } ?? ""
                    map[key] = .string(quantity)
                }
                if !map.isEmpty { object[field.name] = .object(map) }
                continue
            }
            // A list keeps its empty elements (`apiGroups: [""]`, the core group); only a lone empty field is omitted.
            let decoded = try values.compactMap { try value($0, field.repeated ? element(field.shape) : field.shape) }
            if field.repeated {
                if !decoded.isEmpty { object[field.name] = .array(decoded) }
            } else if let last = decoded.last {
                object[field.name] = last
            }
        }
        return .object(object)
    }

    /// The shape of one element of a repeated field: present means kept, also when empty.
    private static func element(_ shape: Shape) -> Shape {
        switch shape {
        case .string, .int, .bool, .message: .optional(shape)
        default: shape
        }
    }

    /// One value of a field, or nil when JSON would omit it.
    private static func value(_ raw: ProtobufBody.Field, _ shape: Shape) throws -> JSONValue? {
        switch shape {
        case .optional(let inner):
            switch inner {
            case .string: return raw.string.map { .string($0) }
            case .int: return raw.varint.map { .number(Double(Int64(bitPattern: $0))) }
            case .bool: return raw.varint.map { .bool($0 != 0) }
            case .message(let name): return try raw.bytes.map { try decode($0, as: name) }
            default: return try value(raw, inner)
            }
        case .string:
            guard let text = raw.string, !text.isEmpty else { return nil }
            return .string(text)
        case .int:
            guard let number = raw.varint, number != 0 else { return nil }
            return .number(Double(Int64(bitPattern: number)))
        case .bool:
            guard let flag = raw.varint, flag != 0 else { return nil }
            return .bool(true)
        case .message(let name):
            guard let bytes = raw.bytes else { return nil }
            let decoded = try decode(bytes, as: name)
            return decoded.objectValue?.isEmpty == true ? nil : decoded
        case .intOrString:
            guard let bytes = raw.bytes else { return nil }
            let parts = try ProtobufBody.fields(bytes)
            if parts[1]?.first?.varint == 1 { return .string(parts[3]?.first?.string ?? "") }
            return .number(Double(Int64(bitPattern: parts[2]?.first?.varint ?? 0)))
        case .quantity:
            guard let bytes = raw.bytes, let text = try ProtobufBody.fields(bytes)[1]?.first?.string, !text.isEmpty else { return nil }
            return .string(text)
        case .inline, .stringMap, .quantityMap:
            return nil
        }
    }
}
