/// The one currency of kverify: every check (a metric rule, a Redis key audit, a readiness rule, a log scan)
/// produces findings, and reports and exit codes are derived from them alone.
public struct Finding: Sendable, Hashable, Codable {
    /// Whether a check held. Ordered by severity so the worst of a set is its `max()`.
    public enum Status: String, Sendable, Hashable, Codable, Comparable, CaseIterable {
        case pass, warn, fail

        private var rank: Int {
            switch self {
            case .pass: 0
            case .warn: 1
            case .fail: 2
            }
        }

        public static func < (lhs: Status, rhs: Status) -> Bool { lhs.rank < rhs.rank }
    }

    /// Stable identifier of the check, e.g. `gunicorn.requests_total.positive` or `redis.ttl.missing`.
    public var checkID: String
    /// What was checked: a metric with labels, a Redis key, a pod or node. Empty for whole-input checks.
    public var subject: String
    public var status: Status
    /// What the check wanted, in words a user can compare with `observed`.
    public var expected: String?
    /// What was seen instead (or, on pass, what was seen).
    public var observed: String?
    /// Free text: why it matters, or what to do next.
    public var detail: String?
    /// What `subject` names, structured, so a consumer can group or filter findings without parsing the text.
    public var about: Subject?

    /// The objects a finding is about; each field is set where the check knows it.
    public struct Subject: Sendable, Hashable, Codable {
        public var node: String?
        public var pod: String?
        public var container: String?
        /// A metric family (or series) name.
        public var metric: String?
        /// A Redis key or key pattern.
        public var key: String?

        public init(node: String? = nil, pod: String? = nil, container: String? = nil, metric: String? = nil, key: String? = nil) {
            self.node = node
            self.pod = pod
            self.container = container
            self.metric = metric
            self.key = key
        }
    }

    public init(
        checkID: String,
        subject: String = "",
        status: Status,
        expected: String? = nil,
        observed: String? = nil,
        detail: String? = nil,
        about: Subject? = nil
    ) {
        self.checkID = checkID
        self.subject = subject
        self.status = status
        self.expected = expected
        self.observed = observed
        self.detail = detail
        self.about = about
    }

    /// The same finding placed on a pod of a node: `node/N pod/P` before the subject, and both in `about`.
    public func scoped(toPod pod: String, node: String) -> Finding {
        var scoped = self
        scoped.subject = "node/\(node) pod/\(pod)" + (subject.isEmpty ? "" : " \(subject)")
        var about = self.about ?? Subject()
        about.node = node
        about.pod = pod
        scoped.about = about
        return scoped
    }

    public static func pass(_ checkID: String, subject: String = "", expected: String? = nil, observed: String? = nil) -> Finding {
        Finding(checkID: checkID, subject: subject, status: .pass, expected: expected, observed: observed)
    }

    public static func warn(
        _ checkID: String, subject: String = "", expected: String? = nil, observed: String? = nil, detail: String? = nil
    ) -> Finding {
        Finding(checkID: checkID, subject: subject, status: .warn, expected: expected, observed: observed, detail: detail)
    }

    public static func fail(
        _ checkID: String, subject: String = "", expected: String? = nil, observed: String? = nil, detail: String? = nil
    ) -> Finding {
        Finding(checkID: checkID, subject: subject, status: .fail, expected: expected, observed: observed, detail: detail)
    }
}

/// One line, as a log or a failed test expectation shows it: `FAIL check subject: expected …; observed …; detail`.
extension Finding: CustomStringConvertible {
    public var description: String {
        var parts: [String] = []
        if let expected { parts.append("expected \(expected)") }
        if let observed { parts.append("observed \(observed)") }
        if let detail { parts.append(detail) }
        let head = "\(status.rawValue.uppercased()) \(checkID)" + (subject.isEmpty ? "" : " \(subject)")
        return parts.isEmpty ? head : head + ": " + parts.joined(separator: "; ")
    }
}
