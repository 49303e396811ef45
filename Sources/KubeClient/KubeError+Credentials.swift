import Foundation
import HTTP
import KubeModel

extension KubeError {
    /// The error with every credential the request carried replaced by `REDACTED`: an API server (or a proxy in
    /// front of it) may echo the Authorization header in a 401/403 `Status` message, and kverify prints messages.
    func scrubbing(credentialsIn headers: [HTTPHeader]) -> KubeError {
        let secrets = Self.credentials(in: headers)
        guard !secrets.isEmpty else { return self }
        func scrub(_ text: String) -> String {
            secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "REDACTED") }
        }
        var copy = self
        copy.message = scrub(message)
        copy.status?.message = status?.message.map(scrub)
        return copy
    }

    /// The token of `Bearer x`, and for `Basic x` the base64 text and the password inside it (longest first, so
    /// a secret containing another is replaced whole).
    static func credentials(in headers: [HTTPHeader]) -> [String] {
        var secrets: [String] = []
        for header in headers where header.name.lowercased() == "authorization" {
            let parts = header.value.split(separator: " ", maxSplits: 1).map(String.init)
            // Replacing a very short secret would mangle ordinary words ("x" in "text/html"); the pattern rules
            // of `Redaction` still catch it after "Bearer".
            guard parts.count == 2, parts[1].count >= 8 else { continue }
            secrets.append(parts[1])
            if parts[0].lowercased() == "basic", let decoded = Data(base64Encoded: parts[1]),
               let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":") {
                let password = String(pair[pair.index(after: colon)...])
                if password.count >= 8 { secrets.append(password) }
            }
        }
        return secrets.sorted { $0.count > $1.count }
    }
}
