import Foundation
import Synchronization
import KubeModel

/// The sim's token issuer, the stand-in for the real API server's ServiceAccount token signer: the kubelet asks it
/// for a token when it fills a pod's `serviceAccountToken` projection, the API server asks it who a bearer token
/// belongs to. Tokens are opaque random strings (clients never look inside one); a token stays valid while the
/// ServiceAccount it was issued for exists with the same uid, as a bound token dies with its account.
public final class ServiceAccountTokens: Sendable {
    public struct Subject: Sendable, Equatable {
        public var namespace: String
        public var name: String
        public var uid: String

        public init(namespace: String, name: String, uid: String) {
            self.namespace = namespace
            self.name = name
            self.uid = uid
        }

        /// `system:serviceaccount:NS:NAME`, the user name RBAC and error messages use.
        public var userName: String { "system:serviceaccount:\(namespace):\(name)" }
        public var groups: [String] { ["system:serviceaccounts", "system:serviceaccounts:\(namespace)", "system:authenticated"] }
    }

    private let issued = Mutex<[String: Subject]>([:])

    public init() {}

    /// A new token for the account.
    public func issue(for subject: Subject) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        let token = "kverify-sim-sa." + bytes.map { String(format: "%02x", $0) }.joined()
        issued.withLock { $0[token] = subject }
        return token
    }

    /// Who holds `token`, if the sim issued it and its ServiceAccount still exists with the uid it was issued for.
    public func subject(of token: String, in store: ObjectStore) -> Subject? {
        guard let subject = issued.withLock({ $0[token] }) else { return nil }
        guard let account = try? store.get(ResourceCatalog.serviceAccounts, namespace: subject.namespace, name: subject.name),
              account.string(at: "metadata", "uid") == subject.uid else { return nil }
        return subject
    }
}
