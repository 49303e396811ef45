import Foundation

/// A string-valued enumeration that keeps values it does not know (`Running`, `CrashLoopBackOff`, or a
/// value a newer server invents) instead of failing to decode. Known values are static constants.
public protocol OpenEnum: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral where RawValue == String
{
    init(rawValue: String)
}

extension OpenEnum {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
    public var description: String { rawValue }
}

/// `metav1.ObjectMeta`, only the fields kverify reads.
public struct ObjectMeta: Codable, Hashable, Sendable {
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var ownerReferences: [OwnerReference]?

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
    }
}

public struct OwnerReference: Codable, Hashable, Sendable {
    public var apiVersion: String?
    public var kind: String?
    public var name: String?
    public var uid: String?
    public var controller: Bool?
}

/// `metav1.ListMeta`.
public struct ListMeta: Codable, Hashable, Sendable {
    public var resourceVersion: String?
    public var `continue`: String?
    public init(resourceVersion: String? = nil) { self.resourceVersion = resourceVersion }
}

/// `"True"`, `"False"`, `"Unknown"` — or whatever else a server sends, kept verbatim.
public struct ConditionStatus: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let `true`: Self = "True"
    public static let `false`: Self = "False"
    public static let unknown: Self = "Unknown"
}

/// The condition shape shared by pods, nodes, deployments and daemonsets.
public struct Condition: Codable, Hashable, Sendable {
    public var type: String
    public var status: ConditionStatus
    public var reason: String?
    public var message: String?
    public var lastTransitionTime: String?

    public init(type: String, status: ConditionStatus, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}

extension Array where Element == Condition {
    /// The condition of `type`, if the object reports it.
    public subscript(type: String) -> Condition? { first { $0.type == type } }
}

/// An `intstr.IntOrString` (`maxUnavailable: 1` or `"25%"`, `targetPort: http`).
public enum IntOrString: Codable, Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }

    public var description: String {
        switch self {
        case .int(let value): "\(value)"
        case .string(let value): value
        }
    }
}

/// A label selector (`matchLabels` only; `matchExpressions` are kept opaque).
public struct LabelSelector: Codable, Hashable, Sendable {
    public var matchLabels: [String: String]?
    public init(matchLabels: [String: String]? = nil) { self.matchLabels = matchLabels }

    /// The `labelSelector` query form, `a=1,b=2`, sorted so it is stable.
    public var selectorString: String {
        (matchLabels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// Decoding helpers: Go's `omitempty` drops zero integers and false booleans, so a missing count means 0.
extension KeyedDecodingContainer {
    func count(_ key: Key) throws -> Int { try decodeIfPresent(Int.self, forKey: key) ?? 0 }
    func flag(_ key: Key) throws -> Bool { try decodeIfPresent(Bool.self, forKey: key) ?? false }
}

/// Every typed object kverify reads: it has metadata and knows its own apiVersion/kind.
public protocol KubeObject: Codable, Sendable {
    static var apiVersion: String { get }
    static var kind: String { get }
    var metadata: ObjectMeta { get }
}

extension KubeObject {
    /// `kind/namespace/name` (or `kind/name` for cluster-scoped objects), for messages.
    public var reference: String {
        let name = metadata.name ?? "<unnamed>"
        if let namespace = metadata.namespace, !namespace.isEmpty { return "\(Self.kind)/\(namespace)/\(name)" }
        return "\(Self.kind)/\(name)"
    }
}

/// Any `…List`: `items` plus the list's resourceVersion, which a watch starts from.
public struct KubeList<Item: Codable & Sendable>: Codable, Sendable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ListMeta
    public var items: [Item]

    public init(metadata: ListMeta = ListMeta(), items: [Item]) {
        self.metadata = metadata
        self.items = items
    }

    private enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, items }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
        kind = try container.decodeIfPresent(String.self, forKey: .kind)
        metadata = try container.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        // An empty list serialises as `"items": null` from some servers and is omitted by others.
        items = try container.decodeIfPresent([Item].self, forKey: .items) ?? []
    }
}
