/// kverify's exit codes. They are part of the interface: every command uses the same four.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Every check passed (warnings allowed).
    case verified = 0
    /// At least one check failed.
    case checkFailed = 1
    /// Bad usage, or input that cannot be read (unparseable metrics, malformed YAML or kubeconfig).
    case usageOrInput = 2
    /// The thing to verify could not be reached: connection refused, HTTP error, TLS or auth failure, timeout.
    case unreachable = 3

    /// Help text shared by every command's `--help` discussion.
    public static let documentation = """
        EXIT CODES
          0  verified: every check passed (warnings allowed)
          1  a check failed
          2  usage error or unreadable input (the message names file, line and column)
          3  unreachable: connection refused, HTTP error, TLS/auth failure or timeout
        """
}

/// An error that ends a command before any verdict could be reached. Its message names the object, what was
/// expected and what was seen; its status says which exit code the process ends with; `cause` is the lower-level
/// error it wraps, if any (its text is appended to the description). The message is redacted (`Redaction`) as it
/// is stored, and so is the description: it is what the stderr error path prints.
public struct KVerifyError: Error, Sendable, CustomStringConvertible {
    public var status: ExitStatus
    public var message: String {
        get { redactedMessage }
        set { redactedMessage = Redaction.redact(newValue) }
    }
    private var redactedMessage: String
    public var cause: (any Error & Sendable)?

    public init(_ status: ExitStatus, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.status = status
        self.redactedMessage = Redaction.redact(message)
        self.cause = cause
    }

    public var description: String {
        guard let cause else { return message }
        let causeText = Redaction.redact(String(describing: cause))
        return message.contains(causeText) ? message : "\(message): \(causeText)"
    }
}
