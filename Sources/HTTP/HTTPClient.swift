internal import CCurl
import Foundation
import Logging

private let curlGlobalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

/// An HTTP client over libcurl's multi interface. One thread owns the multi handle and drives every transfer;
/// callers enqueue from any thread and wake it with `curl_multi_wakeup`. Transfers to the same host share
/// connections, multiplexed over HTTP/2 when the server offers it.
public final class HTTPClient: @unchecked Sendable {  // the multi handle is confined to `loopThread`; queues are under `lock`
    private let multi: UnsafeMutableRawPointer
    private let tls: TLSOptions
    private let logger: Logger
    private let lock = NSLock()
    private var pending: [Transfer] = []
    private var cancelled: [Transfer] = []
    private var running: [UnsafeMutableRawPointer: Transfer] = [:]
    private var isShutDown = false
    private var loopThread: Thread?

    /// - Parameters:
    ///   - tls: certificates, verification and proxy settings for every request of this client.
    ///   - logger: receives one debug line per request (method, URL, status); never headers or bodies.
    public init(tls: TLSOptions = TLSOptions(), logger: Logger = Logger(label: "kverify.http")) {
        _ = curlGlobalInit
        multi = curl_multi_init()
        self.tls = tls
        self.logger = logger
        kv_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        let thread = Thread { [unowned self] in self.runLoop() }
        thread.name = "kverify.http.curl"
        loopThread = thread
        thread.start()
    }

    deinit {
        shutdown()
    }

    /// Performs the request and returns the whole response. Throws `HTTPError` for transport failures; an HTTP
    /// error status (404, 500, …) is a response, not an error.
    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        let box = TransferBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                do {
                    let transfer = try Transfer(request: request, tls: tls, delivery: .whole(continuation))
                    box.transfer = transfer
                    enqueue(transfer)
                    // Cancelled before the handler could see the transfer: end it now.
                    if Task.isCancelled { cancel(transfer) }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            if let transfer = box.transfer { cancel(transfer) }
        }
    }

    /// Starts the request and returns as soon as the response head arrived; the body follows in chunks as the
    /// server sends them. Cancelling the task that iterates the body ends the transfer.
    public func stream(_ request: HTTPRequest) async throws -> HTTPStreamingResponse {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let box = TransferBox()
        continuation.onTermination = { [weak self] reason in
            if case .cancelled = reason, let transfer = box.transfer { self?.cancel(transfer) }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { head in
                do {
                    let body = Transfer.BodyStream(stream: stream, continuation: continuation)
                    let transfer = try Transfer(request: request, tls: tls, delivery: .streaming(head: head, body: body))
                    box.transfer = transfer
                    enqueue(transfer)
                    if Task.isCancelled { cancel(transfer) }
                } catch {
                    head.resume(throwing: error)
                }
            }
        } onCancel: {
            if let transfer = box.transfer { cancel(transfer) }
        }
    }

    /// Stops the loop thread; transfers still running fail with `CancellationError`. Safe to call twice.
    public func shutdown() {
        lock.lock()
        let wasShutDown = isShutDown
        isShutDown = true
        let thread = loopThread
        loopThread = nil
        lock.unlock()
        guard !wasShutDown else { return }
        curl_multi_wakeup(multi)
        // The loop releases the multi handle itself when it sees `isShutDown`.
        if let thread, thread != Thread.current {
            while !thread.isFinished { usleep(1000) }
        }
    }

    private func enqueue(_ transfer: Transfer) {
        lock.lock()
        if isShutDown {
            lock.unlock()
            transfer.finish(nil, cancelled: true)
            return
        }
        pending.append(transfer)
        lock.unlock()
        logger.debug("HTTP \(transfer.request.method) \(transfer.request.url)")
        curl_multi_wakeup(multi)
    }

    private func cancel(_ transfer: Transfer) {
        lock.lock()
        cancelled.append(transfer)
        lock.unlock()
        transfer.finish(nil, cancelled: true)
        curl_multi_wakeup(multi)
    }

    // MARK: The loop thread

    private func runLoop() {
        var stillRunning: Int32 = 0
        while true {
            lock.lock()
            let stop = isShutDown
            let added = pending
            let removed = cancelled
            pending.removeAll()
            cancelled.removeAll()
            lock.unlock()

            for transfer in added where !transfer.isFinished {
                running[transfer.easy] = transfer
                curl_multi_add_handle(multi, transfer.easy)
            }
            for transfer in removed where running.removeValue(forKey: transfer.easy) != nil {
                curl_multi_remove_handle(multi, transfer.easy)
            }
            if stop { break }

            curl_multi_perform(multi, &stillRunning)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let result = message.pointee.data.result
                curl_multi_remove_handle(multi, easy)
                if let transfer = running.removeValue(forKey: easy) {
                    transfer.finish(result)
                }
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        for transfer in running.values {
            curl_multi_remove_handle(multi, transfer.easy)
            transfer.finish(nil, cancelled: true)
        }
        running.removeAll()
        curl_multi_cleanup(multi)
    }
}

/// Lets a cancellation handler find the transfer that the operation body created.
private final class TransferBox: @unchecked Sendable {  // written once before the transfer starts; read on cancel under `lock`
    private let lock = NSLock()
    private var value: Transfer?

    var transfer: Transfer? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
