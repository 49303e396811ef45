/// `meta/v1 Status`: what the API server sends instead of an object when a call fails.
public struct Status: Codable, Hashable, Sendable {
    public struct Cause: Codable, Hashable, Sendable {
        public var reason: String?
        public var message: String?
        public var field: String?
        public init(reason: String? = nil, message: String? = nil, field: String? = nil) {
            self.reason = reason
            self.message = message
            self.field = field
        }
    }

    public struct Details: Codable, Hashable, Sendable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var uid: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?
    }

    public var kind: String?
    public var apiVersion: String?
    /// `Success` or `Failure`.
    public var status: String?
    public var message: String?
    /// Machine-readable reason: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Expired`, `Forbidden`, …
    public var reason: String?
    public var code: Int?
    public var details: Details?

    public init(status: String? = "Failure", message: String? = nil, reason: String? = nil, code: Int? = nil) {
        self.kind = "Status"
        self.apiVersion = "v1"
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
    }
}

/// `GET /version`.
public struct VersionInfo: Codable, Hashable, Sendable {
    public var major: String
    public var minor: String
    public var gitVersion: String
    public var platform: String?

    public init(major: String, minor: String, gitVersion: String, platform: String? = nil) {
        self.major = major
        self.minor = minor
        self.gitVersion = gitVersion
        self.platform = platform
    }

    private enum CodingKeys: String, CodingKey { case major, minor, gitVersion, platform }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        major = try container.decodeIfPresent(String.self, forKey: .major) ?? ""
        minor = try container.decodeIfPresent(String.self, forKey: .minor) ?? ""
        gitVersion = try container.decode(String.self, forKey: .gitVersion)
        platform = try container.decodeIfPresent(String.self, forKey: .platform)
    }
}

/// `APIResourceList` from legacy discovery (`/api/v1`, `/apis/apps/v1`).
public struct APIResourceList: Codable, Hashable, Sendable {
    public struct Resource: Codable, Hashable, Sendable {
        /// Plural path segment, e.g. `daemonsets`; subresources look like `pods/log`.
        public var name: String
        public var singularName: String?
        public var namespaced: Bool
        public var kind: String
        public var verbs: [String]?
        public var shortNames: [String]?

        public init(name: String, namespaced: Bool, kind: String, verbs: [String]? = nil) {
            self.name = name
            self.namespaced = namespaced
            self.kind = kind
            self.verbs = verbs
        }
    }

    public var groupVersion: String
    public var resources: [Resource]

    public init(groupVersion: String, resources: [Resource]) {
        self.groupVersion = groupVersion
        self.resources = resources
    }
}

/// `authorization.k8s.io/v1 SelfSubjectAccessReview`: "may I do this?".
public struct SelfSubjectAccessReview: Codable, Hashable, Sendable {
    public struct ResourceAttributes: Codable, Hashable, Sendable {
        public var namespace: String?
        public var verb: String
        public var group: String?
        public var resource: String
        public var subresource: String?
        public var name: String?

        public init(verb: String, group: String? = nil, resource: String, subresource: String? = nil, namespace: String? = nil) {
            self.verb = verb
            self.group = group
            self.resource = resource
            self.subresource = subresource
            self.namespace = namespace
        }

        /// `get pods/proxy in default`, for findings.
        public var summary: String {
            var text = verb + " " + (group.map { $0.isEmpty ? "" : "\($0)/" } ?? "") + resource
            if let subresource { text += "/\(subresource)" }
            if let namespace { text += " in \(namespace)" }
            return text
        }
    }

    public struct Spec: Codable, Hashable, Sendable {
        public var resourceAttributes: ResourceAttributes
    }

    public struct ReviewStatus: Codable, Hashable, Sendable {
        public var allowed: Bool
        public var denied: Bool
        public var reason: String?

        private enum CodingKeys: String, CodingKey { case allowed, denied, reason }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            allowed = try container.flag(.allowed)  // `omitempty`: a refusal may carry no `allowed` at all
            denied = try container.flag(.denied)
            reason = try container.decodeIfPresent(String.self, forKey: .reason)
        }
    }

    public var apiVersion: String = "authorization.k8s.io/v1"
    public var kind: String = "SelfSubjectAccessReview"
    public var spec: Spec
    public var status: ReviewStatus?

    public init(_ attributes: ResourceAttributes) {
        spec = Spec(resourceAttributes: attributes)
    }
}
