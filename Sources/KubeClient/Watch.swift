import Foundation
import KubeModel

/// Splits a watch body into events: one JSON object per line, across arbitrary chunk boundaries. A pure state
/// machine: feed it chunks, get events. A partial line is kept until its newline arrives (swiftkube's streamer
/// ends the stream there instead); a line longer than `maxLineBytes` is an error, not unbounded memory.
///
/// A line is checked for JSON syntax and split into its `type` and the bytes of its `object` without building the
/// object: the consumer decodes those bytes once, into its own typed model (a pod event is ~11 KB; parsing it into
/// a tree and encoding it again here cost milliseconds per event, and a rollout's burst of events queued up).
public struct WatchLineDecoder: Sendable {
    public let maxLineBytes: Int
    private var buffer: [UInt8] = []
    /// A bad line found after good events of the same chunk: those are returned first, this is thrown by the
    /// next call (and every one after it: the stream cannot be trusted past it).
    private var failure: KubeError?

    public init(maxLineBytes: Int = 16 << 20) { self.maxLineBytes = maxLineBytes }

    /// Events completed by `chunk`. When a line of the chunk is bad, the events before it are returned and the
    /// error comes from the next `feed` or `finish`; with no event before it, it is thrown at once.
    public mutating func feed(_ chunk: some Collection<UInt8>) throws -> [WatchEvent] {
        if let failure { throw failure }
        var events: [WatchEvent] = []
        do {
            var rest = chunk[...]
            while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
                try append(rest[..<newline])
                if let event = try decodeLine() { events.append(event) }
                buffer.removeAll(keepingCapacity: true)
                rest = rest[rest.index(after: newline)...]
            }
            try append(rest)
        } catch let error as KubeError {
            failure = error
            buffer.removeAll()
            if events.isEmpty { throw error }
        }
        return events
    }

    /// Call when the body ended: a last line without a newline is still an event if it is complete JSON.
    public mutating func finish() throws -> [WatchEvent] {
        if let failure { throw failure }
        defer { buffer.removeAll() }
        return try decodeLine().map { [$0] } ?? []
    }

    private mutating func append(_ bytes: some Collection<UInt8>) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count > maxLineBytes {
            throw KubeError(.badResponse, "watch stream sent more than \(maxLineBytes) bytes without a newline; not a Kubernetes watch")
        }
    }

    private func decodeLine() throws -> WatchEvent? {
        guard buffer.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\t") }) else { return nil }
        let event: WatchEvent? = buffer.withUnsafeBytes { line in
            guard let members = JSONScan.members(line),
                  let typeRange = members.last(where: { $0.key == "type" })?.value,
                  let type = JSONScan.plainString(line, typeRange)
                    ?? (try? JSONDecoder().decode(String.self, from: Data(line[typeRange]))),
                  let object = members.last(where: { $0.key == "object" })?.value
            else { return nil }
            return WatchEvent(type: WatchEventType(rawValue: type), object: Data(line[object]))
        }
        guard let event else {
            let line = buffer.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }
            let start = String(decoding: line.prefix(40), as: UTF8.self)
            throw KubeError(.badResponse, "watch stream line (\(line.count) bytes, starting \(start.debugDescription)) is not a watch event")
        }
        return event
    }
}

/// What `watch(…)` delivers: changes, plus a `synced` snapshot after the first list and after every relist.
public struct WatchUpdate: Sendable {
    public enum UpdateType: Sendable, Equatable { case added, modified, deleted, synced }

    public var type: UpdateType
    /// The changed object (`added`/`modified`/`deleted`).
    public var object: Data?
    /// Every object that exists, after a (re)list (`synced` only).
    public var snapshot: [Data]

    public func decode<T: Decodable>(_ type: T.Type) throws -> T? {
        try object.map { try decodeObject(type, $0, what: "watch object") }
    }
}

/// How `watch(…)` behaves; the defaults suit kverify's waits.
public struct WatchPolicy: Sendable {
    /// Each watch request asks the server to end it after this long; the watch is then renewed.
    public var timeoutSeconds: Int = 290
    /// Consecutive failed reconnects before giving up.
    public var maxReconnects: Int = 5
    public var backoff: Backoff = Backoff()

    public init(timeoutSeconds: Int = 290, maxReconnects: Int = 5, backoff: Backoff = Backoff()) {
        self.timeoutSeconds = timeoutSeconds
        self.maxReconnects = maxReconnects
        self.backoff = backoff
    }
}

extension KubeAPI {
    /// List, then watch from the list's resourceVersion, forever (until the consumer stops iterating):
    /// bookmarks advance the resourceVersion; a request the server ends (`timeoutSeconds`) is renewed from it;
    /// `410 Gone` (an ERROR event or the response status) triggers a relist; a dropped connection is retried
    /// with backoff. Other errors end the stream.
    public func watch(
        _ resource: Resource, namespace: String?, options: ListOptions = ListOptions(), policy: WatchPolicy = WatchPolicy()
    ) -> AsyncThrowingStream<WatchUpdate, any Error> {
        let (stream, continuation) = AsyncThrowingStream<WatchUpdate, any Error>.makeStream()
        let task = Task {
            do {
                try await runWatch(resource, namespace: namespace, options: options, policy: policy) {
                    continuation.yield($0)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func runWatch(
        _ resource: Resource, namespace: String?, options: ListOptions, policy: WatchPolicy,
        yield: @Sendable (WatchUpdate) -> Void
    ) async throws {
        var resourceVersion: String?
        var failures = 0
        while !Task.isCancelled {
            if resourceVersion == nil {
                let list = try await self.list(resource, namespace: namespace, options: options)
                resourceVersion = list.resourceVersion ?? ""
                yield(WatchUpdate(type: .synced, object: nil, snapshot: list.items))
            }
            var needsRelist = false
            do {
                let events = try await watchOnce(
                    resource, namespace: namespace, options: options, resourceVersion: resourceVersion ?? "",
                    timeoutSeconds: policy.timeoutSeconds)
                for try await event in events {
                    failures = 0
                    switch event.type {
                    case .bookmark:
                        resourceVersion = event.resourceVersion ?? resourceVersion
                    case .error:
                        let status = try? JSONDecoder().decode(Status.self, from: event.object)
                        if status?.code == 410 || status?.reason == "Expired" || status?.reason == "Gone" {
                            needsRelist = true
                        } else {
                            throw KubeError.from(
                                httpStatus: status?.code ?? 500, body: Array(event.object), contentType: "application/json",
                                what: "watch \(resource)")
                        }
                    default:
                        resourceVersion = event.resourceVersion ?? resourceVersion
                        let type: WatchUpdate.UpdateType =
                            event.type == .added ? .added : event.type == .deleted ? .deleted : .modified
                        yield(WatchUpdate(type: type, object: event.object, snapshot: []))
                    }
                    if needsRelist { break }
                }
            } catch let error as KubeError where error.code == .gone {
                needsRelist = true
            } catch let error as KubeError where [.unreachable, .timedOut, .badResponse, .serverError].contains(error.code) {
                // A dropped or garbled connection: reconnect from the last resourceVersion, a bounded number of times.
                failures += 1
                if failures > policy.maxReconnects { throw error }
                try await Task.sleep(for: policy.backoff.delay(attempt: failures))
            }
            if needsRelist { resourceVersion = nil }
        }
        throw CancellationError()
    }
}

/// Exponential backoff with "equal jitter": a random delay between half and all of the exponential step, capped.
public struct Backoff: Sendable {
    public var base: Duration = .milliseconds(200)
    public var cap: Duration = .seconds(10)

    public init(base: Duration = .milliseconds(200), cap: Duration = .seconds(10)) {
        self.base = base
        self.cap = cap
    }

    /// The delay before retry number `attempt` (1-based).
    public func delay(attempt: Int) -> Duration {
        let exponential = base * (1 << min(max(attempt - 1, 0), 16))
        let ceiling = min(exponential, cap)
        return ceiling * Double.random(in: 0.5...1.0)
    }
}
