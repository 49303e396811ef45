import Foundation
import SimFaults
import SimStore
import KubeModel

/// One HTTP request as the router sees it: method, decoded path segments, query, headers, body.
package struct APIRequest: Sendable {
    var method: String
    var path: String
    var segments: [String]
    var query: [String: String]
    var headers: [String: String]
    var body: Data

    init(method: String, uri: String, headers: [(String, String)], body: Data) {
        self.method = method
        let components = URLComponents(string: uri)
        path = components?.percentEncodedPath.removingPercentEncoding ?? uri
        segments = path.split(separator: "/").map(String.init)
        var query: [String: String] = [:]
        // Go's url.Values encodes a space as "+", which URLComponents would keep.
        for pair in (components?.percentEncodedQuery ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            if let name = parts.first, query[name] == nil { query[name] = parts.count > 1 ? parts[1] : "" }
        }
        self.query = query
        var lowered: [String: String] = [:]
        for (name, value) in headers { lowered[name.lowercased(), default: ""] += lowered[name.lowercased()] == nil ? value : ",\(value)" }
        self.headers = lowered
        self.body = body
        rawQuery = components?.percentEncodedQuery
    }

    /// The query as sent (forwarded unchanged by the proxy).
    var rawQuery: String?
    /// Who sent it (the I/O shell authenticates; the router authorizes).
    var identity: Identity = .admin

    /// The token of an `Authorization: Bearer` header.
    var bearerToken: String? {
        guard let value = headers["authorization"], value.lowercased().hasPrefix("bearer ") else { return nil }
        let token = value.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    var accept: String { headers["accept"] ?? "" }
    var contentType: String { (headers["content-type"] ?? "application/json").lowercased() }

    func flag(_ name: String) -> Bool { ["true", "1"].contains(query[name]?.lowercased() ?? "") }
}

/// Where a resource request points: which resource, namespace, object, subresource.
package struct ResourceTarget: Sendable {
    var resource: ResourceType
    var namespace: String?
    var name: String?
    var subresource: String?
    /// Path after `proxy` (`metrics` in `pods/x:9093/proxy/metrics`).
    var rest: [String] = []

    /// Parses `/api/v1/...` or `/apis/G/V/...`; nil when the path names no known resource.
    init?(segments: [String]) {
        let group: String, version: String, rest: [String]
        if segments.first == "api", segments.count >= 3 {
            (group, version, rest) = ("", segments[1], Array(segments.dropFirst(2)))
        } else if segments.first == "apis", segments.count >= 4 {
            (group, version, rest) = (segments[1], segments[2], Array(segments.dropFirst(3)))
        } else {
            return nil
        }
        var remaining = rest[...]
        if remaining.count >= 3, remaining.first == "namespaces",
           let namespaced = ResourceCatalog.find(group: group, version: version, plural: remaining[remaining.startIndex + 2]),
           namespaced.namespaced {
            namespace = remaining[remaining.startIndex + 1]
            remaining = remaining.dropFirst(2)
        }
        guard let plural = remaining.first, let resource = ResourceCatalog.find(group: group, version: version, plural: plural) else {
            return nil
        }
        self.resource = resource
        remaining = remaining.dropFirst()
        name = remaining.first
        subresource = remaining.dropFirst().first
        self.rest = Array(remaining.dropFirst(2))
        if subresource != nil, !resource.subresources.contains(subresource ?? "") { return nil }
    }
}
