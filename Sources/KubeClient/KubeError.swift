import Foundation
import KubeModel

/// A failed call to the API server, the same for both backends. Messages name the object and what the server
/// said; they never contain a token or key.
public struct KubeError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What went wrong, as a label safe to match on.
    public enum Code: String, Sendable, Equatable {
        /// 401: the credentials were refused.
        case unauthorized
        /// 403: authenticated, but RBAC says no.
        case forbidden
        case notFound
        /// 409 `Conflict`: a server-side apply conflict with another field manager, or an update race.
        case conflict
        /// 409 `AlreadyExists`.
        case alreadyExists
        /// 410: a watch's resourceVersion is too old; relist.
        case gone
        /// 422: the object is invalid; `causes` name the fields.
        case invalid
        /// 429 after the retries ran out.
        case tooManyRequests
        /// 5xx after the retries ran out.
        case serverError
        /// Another 4xx.
        case badRequest
        /// Connection refused, DNS failure, reset.
        case unreachable
        /// Handshake failed: wrong CA, expired or missing client certificate, name mismatch.
        case tlsFailed
        case timedOut
        /// The server answered with something that is not the Kubernetes API (HTML, truncated JSON, a line
        /// longer than the bound).
        case badResponse
        /// The manifest's kind is not served by this cluster.
        case unknownKind
        /// A manifest that cannot be applied (YAML error, missing apiVersion/kind/name).
        case badManifest
        /// kubectl failed in a way that maps to nothing above.
        case kubectlFailed
    }

    public var code: Code
    public var message: String
    /// The `Status` the server sent, when it sent one.
    public var status: Status?

    public init(_ code: Code, _ message: String, status: Status? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { message }

    /// The causes of a 422, as `field: message` lines.
    public var causes: [String] {
        (status?.details?.causes ?? []).map { ($0.field.map { "\($0): " } ?? "") + ($0.message ?? $0.reason ?? "") }
    }

    /// Whether the user's input is at fault (an invalid or unknown object, a conflict), rather than the cluster
    /// (unreachable, refusing us, failing). The CLI's exit codes and the pattern run's findings both ask this.
    public var isCausedByInput: Bool {
        [.invalid, .badManifest, .unknownKind, .conflict, .alreadyExists].contains(code)
    }

    /// Maps an HTTP status (and the `Status` body, if any) to a code, as client-go's `errors.FromObject` does.
    static func code(forHTTPStatus http: Int, reason: String?) -> Code {
        switch (http, reason) {
        case (401, _): .unauthorized
        case (403, _): .forbidden
        case (404, _): .notFound
        case (409, "AlreadyExists"): .alreadyExists
        case (409, _): .conflict
        case (410, _): .gone
        case (422, _): .invalid
        case (429, _): .tooManyRequests
        case (500...599, _): .serverError
        default: .badRequest
        }
    }

    /// Builds the error for a failed call from the server's answer. `what` names the request's object.
    static func from(httpStatus: Int, body: [UInt8], contentType: String?, what: String) -> KubeError {
        if let status = try? JSONDecoder().decode(Status.self, from: Data(body)), status.kind == "Status" {
            let httpCode = status.code ?? httpStatus
            let code = Self.code(forHTTPStatus: httpCode, reason: status.reason)
            let reason = status.reason ?? "HTTP \(httpStatus)"
            let serverMessage = status.message ?? "no message"
            var message = "\(what): \(reason) (\(httpCode)): \(serverMessage)"
            let causes = (status.details?.causes ?? []).map { ($0.field.map { "\($0): " } ?? "") + ($0.message ?? $0.reason ?? "") }
            if !causes.isEmpty, !(status.message ?? "").contains(causes[0]) { message += " [" + causes.joined(separator: "; ") + "]" }
            message += hint(code)
            return KubeError(code, message, status: status)
        }
        let code = Self.code(forHTTPStatus: httpStatus, reason: nil)
        let kind = contentType.map { "\($0)" } ?? "no content type"
        let looksHTML = body.prefix(512).contains(UInt8(ascii: "<")) && String(decoding: body.prefix(512), as: UTF8.self).lowercased().contains("<html")
        if looksHTML || !(contentType ?? "").contains("json") && httpStatus < 400 {
            return KubeError(
                .badResponse,
                "\(what): HTTP \(httpStatus) with \(kind) (\(body.count) bytes) instead of a Kubernetes Status/JSON — "
                    + "is the server URL a Kubernetes API server and not a proxy or login page?")
        }
        return KubeError(code, "\(what): HTTP \(httpStatus) (\(kind), \(body.count) bytes, no Status object)" + hint(code))
    }

    static func hint(_ code: Code) -> String {
        switch code {
        case .unauthorized: " — the credentials were refused; refresh the token or client certificate in the kubeconfig"
        case .forbidden: " — ask a cluster admin for the RBAC permission named above"
        default: ""
        }
    }
}
