import Foundation
import KVerifyTestSupport
import KubeClient
import KubeConfig
import Testing

/// The two backends every contract test runs through.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case rest, kubectl
    var testDescription: String { rawValue }
}

/// A temp directory (kubeconfigs, kubectl's discovery cache), removed afterwards.
struct Workspace {
    let directory: URL

    static func with<T>(_ body: (Workspace) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-kube-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(Workspace(directory: directory))
    }

    /// Fast retries so tests that exhaust them stay short.
    static let retry = RetryPolicy(maxAttempts: 3, backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(50)))

    func configuration(_ kubeconfig: String) throws -> KubeConfiguration {
        try KubeConfigLoader(environment: [:], homeDirectory: directory.path).load(.init(kubeconfig: kubeconfig))
    }

    /// A backend of `kind` for the kubeconfig at `path` (kubectl gets its own discovery cache here).
    func backend(_ kind: Backend, kubeconfig path: String, requestTimeout: Duration = .seconds(20)) throws -> any KubeAPI {
        let configuration = try configuration(path)
        switch kind {
        case .rest:
            return RESTBackend(configuration: configuration, requestTimeout: requestTimeout, retry: Self.retry)
        case .kubectl:
            var environment = ProcessInfo.processInfo.environment
            environment["KUBECACHEDIR"] = directory.appendingPathComponent("kubectl-cache").path
            environment["HOME"] = directory.path
            return KubectlBackend(configuration: configuration, timeout: requestTimeout, retry: Self.retry, environment: environment)
        }
    }

    /// A server with a client-certificate kubeconfig, and a backend for it.
    static func withServer<T>(
        _ kind: Backend, clientAuth: KubeAPIServerFixture.ClientAuth = .required, token: String? = nil, nodes: Int = 3,
        notReady: Int = 0, deny: [String] = [], credentials: KubeAPIServerFixture.Credentials = .clientCertificate,
        _ body: (KubeAPIServerFixture, any KubeAPI, Workspace) async throws -> T
    ) async throws -> T {
        try await KubeAPIServerFixture.with(clientAuth: clientAuth, token: token, nodes: nodes, notReady: notReady, deny: deny) { server in
            try await Workspace.with { workspace in
                let path = try server.writeKubeconfig(to: workspace.directory, credentials: credentials)
                return try await body(server, try workspace.backend(kind, kubeconfig: path), workspace)
            }
        }
    }
}

/// Runs `body` and returns the `KubeError` it threw (recording an issue when it threw nothing or something else).
func kubeError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> KubeError? {
    do {
        try await body()
        Issue.record("expected a KubeError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as KubeError {
        return error
    } catch {
        Issue.record("expected a KubeError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

struct TestDeadlineExceeded: Error, CustomStringConvertible {
    var description: String
}

/// Runs `body` (on the caller's task, so it may mutate captured state), failing instead of hanging when it
/// outlasts `limit`: a watcher task cancels it.
func withTestDeadline(_ limit: Duration, _ body: () async throws -> Void) async throws {
    let task = withUnsafeCurrentTask { $0 }
    let timedOut = Locked(false)
    let watchdog = Task {
        try await Task.sleep(for: limit)
        timedOut.set(true)
        task?.cancel()
    }
    defer { watchdog.cancel() }
    do {
        try await body()
    } catch where timedOut.get() {
        throw TestDeadlineExceeded(description: "no result within \(limit)")
    }
    if timedOut.get() { throw TestDeadlineExceeded(description: "no result within \(limit)") }
}

final class Locked<Value: Sendable>: @unchecked Sendable {  // `value` is only touched under `lock`
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T { try lock.withLock { try body(&value) } }
}
