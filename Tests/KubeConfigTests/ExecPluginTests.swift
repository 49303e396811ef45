import Findings
import Foundation
import KubeConfig
import Testing

@Suite("exec credential plugins and token sources")
struct ExecPluginTests {
    static let endpoint = ClusterEndpoint(server: "https://127.0.0.1:6443")

    func provider(_ scratch: Scratch, script: String, args: [String] = [], env: [ExecConfig.EnvVar] = [],
                  timeout: Duration = .seconds(10)) throws -> CredentialProvider {
        let path = try scratch.write("plugin.sh", "#!/bin/sh\n" + script, executable: true)
        var auth = AuthConfig()
        auth.exec = ExecConfig(command: path, args: args, env: env, apiVersion: "client.authentication.k8s.io/v1")
        return CredentialProvider(auth: auth, cluster: Self.endpoint, execTimeout: timeout, baseEnvironment: ["PATH": "/usr/bin:/bin", "INHERITED": "yes"])
    }

    @Test("a token plugin gets its env merged and KUBERNETES_EXEC_INFO, and is cached until expiry")
    func tokenAndCache() async throws {
        try await Scratch.with { scratch in
            let log = scratch.directory.appendingPathComponent("runs").path
            let provider = try provider(scratch, script: """
                echo "$KUBERNETES_EXEC_INFO|$INHERITED|$FROM_CONFIG|$1" >> \(log)
                cat <<JSON
                {"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
                 "status":{"token":"plugin-token","expirationTimestamp":"2030-01-01T00:00:00Z"}}
                JSON
                """, args: ["arg1"], env: [.init(name: "FROM_CONFIG", value: "merged")])
            let now = try #require(ISO8601DateFormatter().date(from: "2029-12-31T23:00:00Z"))
            let first = try await provider.current(now: now)
            #expect(first.bearerToken?.exposedString == "plugin-token")
            #expect(first.expiresAt == ISO8601DateFormatter().date(from: "2030-01-01T00:00:00Z"))
            _ = try await provider.current(now: now)
            #expect(provider.execRuns == 1)
            let line = try String(contentsOfFile: log, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(line.hasSuffix("|yes|merged|arg1"))
            let info = try JSONSerialization.jsonObject(with: Data(line.split(separator: "|")[0].utf8)) as? [String: Any]
            #expect(info?["kind"] as? String == "ExecCredential")
            #expect(info?["apiVersion"] as? String == "client.authentication.k8s.io/v1")
            // After expiry the plugin runs again; invalidate() (on a 401) forces it too.
            let later = try #require(ISO8601DateFormatter().date(from: "2030-01-01T00:00:01Z"))
            _ = try await provider.current(now: later)
            #expect(provider.execRuns == 2)
            provider.invalidate()
            _ = try await provider.current(now: now)
            #expect(provider.execRuns == 3)
        }
    }

    @Test("a client-certificate plugin")
    func clientCertificate() async throws {
        try await Scratch.with { scratch in
            let provider = try provider(scratch, script: #"""
                printf '%s' '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","clientKeyData":"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n"}}'
                """#)
            let credential = try await provider.current()
            #expect(credential.bearerToken == nil)
            #expect(String(decoding: try #require(credential.clientCertificatePEM), as: UTF8.self).hasPrefix("-----BEGIN CERTIFICATE-----"))
            #expect(credential.clientKeyPEM != nil)
            #expect(credential.expiresAt == nil)
        }
    }

    struct Broken: Sendable, CustomTestStringConvertible {
        var name: String
        var script: String
        var code: KubeConfigError.Code
        var mentions: [String]
        var testDescription: String { name }
    }

    @Test(arguments: [
        Broken(name: "non-zero exit with stderr", script: "echo 'token expired, run: login' >&2\nexit 3",
               code: .execFailed, mentions: ["exited with status 3", "token expired, run: login"]),
        Broken(name: "garbage on stdout", script: "echo 'Please log in: secret-ish-output'",
               code: .execOutputInvalid, mentions: ["not an ExecCredential JSON"]),
        Broken(name: "wrong kind", script: #"echo '{"kind":"Pod","status":{"token":"x"}}'"#,
               code: .execOutputInvalid, mentions: ["'Pod'"]),
        Broken(name: "no token, no certificate", script: #"echo '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}}'"#,
               code: .execOutputInvalid, mentions: ["neither status.token"]),
        Broken(name: "bad expirationTimestamp", script: #"echo '{"kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"tomorrow"}}'"#,
               code: .execOutputInvalid, mentions: ["'tomorrow'"]),
    ])
    func brokenPlugins(_ broken: Broken) async throws {
        try await Scratch.with { scratch in
            let provider = try provider(scratch, script: broken.script)
            do {
                _ = try await provider.current()
                Issue.record("expected \(broken.code)")
            } catch let error as KubeConfigError {
                #expect(error.code == broken.code, "\(error.message)")
                for text in broken.mentions { #expect(error.message.contains(text), "\(error.message)") }
                #expect(!error.message.contains("secret-ish-output"))
                #expect(error.isCredentialFailure)
            }
        }
    }

    @Test("a plugin that hangs (with a grandchild holding stdout) is killed at its deadline")
    func hangingPlugin() async throws {
        try await Scratch.with { scratch in
            let marker = scratch.directory.appendingPathComponent("pid").path
            let provider = try provider(scratch, script: "sleep 300 &\necho $! > \(marker)\nwait\n", timeout: .milliseconds(500))
            do {
                _ = try await provider.current()
                Issue.record("expected a deadline error")
            } catch let error as KubeConfigError {
                #expect(error.code == .execFailed)
                #expect(error.message.contains("did not finish within"))
            }
            // The grandchild was killed with its process group.
            let pid = try #require(Int32(try String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            var gone = false
            for _ in 0..<100 where !gone {
                gone = kill(pid, 0) != 0
                if !gone { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(gone, "sleep grandchild \(pid) still alive")
        }
    }

    @Test("a missing plugin command says so")
    func missingCommand() async throws {
        var auth = AuthConfig()
        auth.exec = ExecConfig(command: "kverify-no-such-plugin")
        auth.exec?.installHint = "install it with: brew install nothing"
        let provider = CredentialProvider(auth: auth, cluster: Self.endpoint, baseEnvironment: ["PATH": "/usr/bin"])
        await #expect {
            _ = try await provider.current()
        } throws: { error in
            let error = error as? KubeConfigError
            return error?.code == .execFailed && error?.message.contains("brew install nothing") == true
        }
    }

    @Test("a tokenFile is re-read on every request (rotation)")
    func tokenFile() async throws {
        try await Scratch.with { scratch in
            let path = try scratch.write("token", "first\n")
            var auth = AuthConfig()
            auth.tokenFile = path
            let provider = CredentialProvider(auth: auth, cluster: Self.endpoint)
            #expect(try await provider.current().bearerToken?.exposedString == "first")
            try scratch.write("token", "second")
            #expect(try await provider.current().bearerToken?.exposedString == "second")
        }
    }

    @Test("secrets print redacted")
    func redaction() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted 7 bytes>")
        #expect(String(reflecting: secret) == "<redacted 7 bytes>")
    }
}
