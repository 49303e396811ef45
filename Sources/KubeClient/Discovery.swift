import Foundation
import Synchronization
import KubeConfig
import KubeModel

/// Legacy discovery (`/api/v1`, `/apis/{group}/{version}` → `APIResourceList`), cached per group-version.
/// Both backends fetch the same documents, so a kind maps to the same resource through either.
final class Discovery: Sendable {
    private let cache = Mutex<[String: APIResourceList]>([:])

    /// Resolves `kind` in `apiVersion`, fetching that group-version's resource list once.
    func resource(apiVersion: String, kind: String, fetch: (String) async throws -> Data) async throws -> Resource {
        let (group, version) = Resource.split(apiVersion: apiVersion)
        let list: APIResourceList
        if let cached = cache.withLock({ $0[apiVersion] }) {
            list = cached
        } else {
            let path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
            let data: Data
            do {
                data = try await fetch(path)
            } catch let error as KubeError where error.code == .notFound {
                throw KubeError(.unknownKind, "the cluster does not serve \(apiVersion) (GET \(path) → 404); is the API group installed?")
            }
            list = try decodeObject(APIResourceList.self, data, what: "discovery \(path)")
            cache.withLock { $0[apiVersion] = list }
        }
        guard let found = list.resources.first(where: { $0.kind == kind && !$0.name.contains("/") }) else {
            let kinds = Set(list.resources.filter { !$0.name.contains("/") }.map(\.kind)).sorted().joined(separator: ", ")
            throw KubeError(.unknownKind, "the cluster serves no kind \(kind) in \(apiVersion) (it serves: \(kinds))")
        }
        return Resource(group: group, version: version, name: found.name, kind: kind, namespaced: found.namespaced)
    }
}
