/// One kubeconfig file as written on disk (`apiVersion: v1, kind: Config`). Only the fields kverify honours.
struct KubeConfigFile: Decodable {
    struct Named<Value: Decodable>: Decodable {
        var name: String
        var value: Value?

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            // `{name: x, cluster: {...}}`, `{name: x, user: {...}}`, `{name: x, context: {...}}`.
            let container = try decoder.container(keyedBy: Key.self)
            name = try container.decode(String.self, forKey: Key(stringValue: "name"))
            let payloadKey = container.allKeys.first { $0.stringValue != "name" }
            value = try payloadKey.flatMap { try container.decodeIfPresent(Value.self, forKey: $0) }
        }
    }

    struct Cluster: Decodable {
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        var tlsServerName: String?
        var proxyURL: String?

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
            case proxyURL = "proxy-url"
        }
    }

    struct User: Decodable {
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var token: String?
        var tokenFile: String?
        var username: String?
        var password: String?
        var exec: ExecConfig?

        enum CodingKeys: String, CodingKey {
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case token, tokenFile, username, password, exec
        }
    }

    struct Context: Decodable {
        var cluster: String?
        var user: String?
        var namespace: String?
    }

    var currentContext: String?
    var clusters: [Named<Cluster>]?
    var users: [Named<User>]?
    var contexts: [Named<Context>]?

    enum CodingKeys: String, CodingKey {
        case currentContext = "current-context"
        case clusters, users, contexts
    }
}

/// `users[].user.exec`: a credential plugin.
public struct ExecConfig: Decodable, Sendable, Hashable {
    public struct EnvVar: Decodable, Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public var command: String
    public var args: [String]?
    public var env: [EnvVar]?
    /// `client.authentication.k8s.io/v1` or `…/v1beta1`; echoed back in `KUBERNETES_EXEC_INFO`.
    public var apiVersion: String?
    public var provideClusterInfo: Bool?
    public var interactiveMode: String?
    public var installHint: String?

    public init(command: String, args: [String]? = nil, env: [EnvVar]? = nil, apiVersion: String? = nil) {
        self.command = command
        self.args = args
        self.env = env
        self.apiVersion = apiVersion
    }
}
