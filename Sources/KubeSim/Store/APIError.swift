import Foundation
import KubeModel

/// An error the API server answers with: a `meta/v1 Status` shaped and worded like the real kube-apiserver's
/// (`k8s.io/apimachinery/pkg/api/errors`), so kubectl prints `Error from server (NotFound): pods "x" not found`.
public struct APIError: Error, Sendable, Equatable {
    public var code: Int
    public var reason: String
    public var message: String
    public var details: JSONValue?

    public init(code: Int, reason: String, message: String, details: JSONValue? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
    }

    /// The `Status` body.
    public var status: JSONValue {
        var object: [String: JSONValue] = [
            "kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Failure",
            "message": .string(message), "reason": .string(reason), "code": .number(Double(code)),
        ]
        if let details { object["details"] = details }
        return .object(object)
    }

    static func details(_ resource: ResourceType, _ name: String) -> JSONValue {
        var object: [String: JSONValue] = ["name": .string(name), "kind": .string(resource.plural)]
        if !resource.group.isEmpty { object["group"] = .string(resource.group) }
        return .object(object)
    }

    static func notFound(_ resource: ResourceType, _ name: String) -> APIError {
        APIError(code: 404, reason: "NotFound", message: "\(resource.qualifiedName) \"\(name)\" not found",
                 details: details(resource, name))
    }

    static func alreadyExists(_ resource: ResourceType, _ name: String) -> APIError {
        APIError(code: 409, reason: "AlreadyExists", message: "\(resource.qualifiedName) \"\(name)\" already exists",
                 details: details(resource, name))
    }

    static func conflict(_ resource: ResourceType, _ name: String, _ why: String) -> APIError {
        APIError(code: 409, reason: "Conflict",
                 message: "Operation cannot be fulfilled on \(resource.qualifiedName) \"\(name)\": \(why)",
                 details: details(resource, name))
    }

    static func invalid(_ resource: ResourceType, _ name: String, field: String, value: String, why: String) -> APIError {
        invalid(resource, name, field: field, rendered: "\"\(value)\"", why: why)
    }

    /// An integer field's value is printed bare, as the real server prints it (`Invalid value: 30379`).
    static func invalid(_ resource: ResourceType, _ name: String, field: String, value: Int, why: String) -> APIError {
        invalid(resource, name, field: field, rendered: String(value), why: why)
    }

    private static func invalid(_ resource: ResourceType, _ name: String, field: String, rendered: String, why: String) -> APIError {
        invalid(resource, name, causes: [.invalid(field, rendered: rendered, why: why)])
    }

    /// One `field.Error` of the real validation: its reason, and its message as `field.Error.ErrorBody` words it.
    struct Cause {
        var field: String
        var reason: String
        var message: String

        static func invalid(_ field: String, rendered: String, why: String) -> Cause {
            Cause(field: field, reason: "FieldValueInvalid", message: "Invalid value: \(rendered): \(why)")
        }

        static func invalid(_ field: String, value: String, why: String) -> Cause {
            invalid(field, rendered: "\"\(value)\"", why: why)
        }

        static func invalid(_ field: String, value: Int, why: String) -> Cause {
            invalid(field, rendered: String(value), why: why)
        }

        static func unsupported(_ field: String, value: String, supported: [String]) -> Cause {
            Cause(field: field, reason: "FieldValueNotSupported",
                  message: "Unsupported value: \"\(value)\": supported values: " + supported.map { "\"\($0)\"" }.joined(separator: ", "))
        }

        static func required(_ field: String, why: String = "") -> Cause {
            Cause(field: field, reason: "FieldValueRequired", message: why.isEmpty ? "Required value" : "Required value: \(why)")
        }

        static func forbidden(_ field: String, why: String) -> Cause {
            Cause(field: field, reason: "FieldValueForbidden", message: "Forbidden: \(why)")
        }
    }

    /// A 422 listing every problem found, worded as the real server aggregates them: one bare, several in `[…]`.
    static func invalid(_ resource: ResourceType, _ name: String, causes: [Cause]) -> APIError {
        var detail = details(resource, name)
        detail.set(["kind"], to: .string(resource.kind))
        detail.set(["causes"], to: .array(causes.map { cause in .object([
            "reason": .string(cause.reason), "message": .string(cause.message), "field": .string(cause.field),
        ]) }))
        let listed = causes.map { "\($0.field): \($0.message)" }
        let summary = listed.count == 1 ? listed[0] : "[" + listed.joined(separator: ", ") + "]"
        return APIError(code: 422, reason: "Invalid", message: "\(resource.kind) \"\(name)\" is invalid: \(summary)", details: detail)
    }

    /// A required field is missing (`spec.selector: Required value`).
    static func required(_ resource: ResourceType, _ name: String, field: String) -> APIError {
        invalid(resource, name, causes: [.required(field)])
    }

    package static func badRequest(_ message: String) -> APIError {
        APIError(code: 400, reason: "BadRequest", message: message)
    }

    static func forbidden(_ resource: ResourceType, _ name: String, _ why: String) -> APIError {
        APIError(code: 403, reason: "Forbidden", message: "\(resource.qualifiedName) \"\(name)\" is forbidden: \(why)",
                 details: details(resource, name))
    }

    package static func methodNotAllowed(_ method: String, _ what: String) -> APIError {
        APIError(code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
    }

    /// What the real server answers for a path it does not serve: a bare 404 `Status`.
    package static let pathNotFound = APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")

    static func expired(requested: Int, oldest: Int) -> APIError {
        APIError(code: 410, reason: "Expired", message: "too old resource version: \(requested) (\(oldest))")
    }

    package static func unsupportedMediaType(_ type: String) -> APIError {
        APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
    }

    package static func serviceUnavailable(_ message: String) -> APIError {
        APIError(code: 503, reason: "ServiceUnavailable", message: message)
    }

    package static func internalError(_ message: String) -> APIError {
        APIError(code: 500, reason: "InternalError", message: "Internal error occurred: \(message)")
    }
}

/// Name rules of the real validation (`k8s.io/apimachinery/pkg/util/validation`).
package enum NameValidation {
    static let subdomainMessage = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    static let labelMessage = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    static let dns1035Message = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"

    /// Returns the reason `name` is invalid for `resource`, or nil when it is valid.
    static func problem(_ name: String, for resource: ResourceType) -> String? {
        switch resource.plural {
        case "namespaces": return isLabel(name) ? nil : labelMessage
        case "services": return isLabel(name) && name.first.map({ $0.isLetter }) == true ? nil : dns1035Message
        default:
            if name.utf8.count > 253 { return "must be no more than 253 characters" }
            return isSubdomain(name) ? nil : subdomainMessage
        }
    }

    static func isLabel(_ name: String) -> Bool {
        (1...63).contains(name.utf8.count) && isLabelShape(Array(name.utf8))
    }

    /// The real check is the length and the regex: a part of a subdomain may be longer than a label's 63
    /// characters (a 64-character pod name is valid).
    static func isSubdomain(_ name: String) -> Bool {
        guard (1...253).contains(name.utf8.count) else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isLabelShape(Array($0.utf8)) }
    }

    /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, any length.
    static func isLabelShape(_ bytes: [UInt8]) -> Bool {
        func alnum(_ byte: UInt8) -> Bool { (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) }
        guard let first = bytes.first, let last = bytes.last, alnum(first), alnum(last) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == 45 }
    }
}

/// A failure of the simulated cluster itself (not an API error sent to a client).
public struct SimError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
