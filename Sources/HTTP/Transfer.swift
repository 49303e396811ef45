internal import CCurl
import Foundation

/// One request in flight: its easy handle, what libcurl must keep alive until cleanup (header list, error
/// buffer), and what it has received. After `start` only the loop thread touches it, except `finish`, which is
/// guarded by `lock` so cancellation and completion cannot both resume a continuation.
final class Transfer: @unchecked Sendable {  // confined to the loop thread; cross-thread state is under `lock`
    enum Delivery {
        /// Collect the whole body and resume once.
        case whole(CheckedContinuation<HTTPResponse, any Error>)
        /// Resume `head` when the headers are complete, then yield body chunks.
        case streaming(head: CheckedContinuation<HTTPStreamingResponse, any Error>?, body: BodyStream)
    }

    struct BodyStream {
        let stream: AsyncThrowingStream<[UInt8], any Error>
        let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    }

    let easy: UnsafeMutableRawPointer
    let request: HTTPRequest
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var connectToList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    private let lock = NSLock()
    private var delivery: Delivery?
    private var responseHeaders: [HTTPHeader] = []
    private var status = 0
    private var body: [UInt8] = []
    private var received = 0
    private(set) var exceededLimit = false

    init(request: HTTPRequest, tls: TLSOptions, delivery: Delivery) throws {
        guard let easy = curl_easy_init() else {
            throw HTTPError(.invalidRequest, url: request.url, reason: "libcurl could not allocate a handle")
        }
        self.easy = easy
        self.request = request
        self.delivery = delivery
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        try configure(tls: tls)
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        curl_slist_free_all(connectToList)
        errorBuffer.deallocate()
    }

    private func configure(tls: TLSOptions) throws {
        var failure: CURLcode = CURLE_OK
        func check(_ code: CURLcode) { if code != CURLE_OK && failure == CURLE_OK { failure = code } }

        check(kv_setopt_string(easy, CURLOPT_URL, request.url))
        check(kv_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        check(kv_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer))
        check(kv_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.curlMilliseconds))
        if let timeout = request.timeout { check(kv_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeout.curlMilliseconds)) }
        if let quiet = request.lowSpeedTimeout {
            check(kv_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1))
            check(kv_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, quiet.curlMilliseconds / 1000)))
        }
        check(kv_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)))
        // Requests started together wait for the first connection's ALPN answer and share it if it is h2, instead of
        // each opening a connection of its own.
        check(kv_setopt_long(easy, CURLOPT_PIPEWAIT, 1))
        check(kv_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0))
        check(kv_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(kv_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, ""))

        switch request.method {
        case "GET": break
        case "HEAD": check(kv_setopt_long(easy, CURLOPT_NOBODY, 1))
        default: check(kv_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method))
        }
        if let body = request.body {
            check(kv_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            // COPYPOSTFIELDS copies the bytes, so the array need not outlive this call.
            if body.isEmpty {
                check(kv_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, ""))
            } else {
                body.withUnsafeBytes { check(kv_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress))) }
            }
        }

        // "Expect:" stops libcurl from waiting for 100-continue on request bodies.
        for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            headerList = curl_slist_append(headerList, line)
        }
        check(kv_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList))

        check(kv_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, tls.verifyPeer ? 1 : 0))
        check(kv_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, tls.verifyPeer ? 2 : 0))
        if let ca = tls.caPEM { ca.withUnsafeBytes { check(kv_setopt_blob(easy, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count)) } }
        if let certificate = tls.clientCertificatePEM {
            certificate.withUnsafeBytes { check(kv_setopt_blob(easy, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count)) }
            check(kv_setopt_string(easy, CURLOPT_SSLCERTTYPE, "PEM"))
        }
        if let key = tls.clientKeyPEM {
            key.withUnsafeBytes { check(kv_setopt_blob(easy, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count)) }
            check(kv_setopt_string(easy, CURLOPT_SSLKEYTYPE, "PEM"))
        }
        for entry in tls.connectTo { connectToList = curl_slist_append(connectToList, entry) }
        if connectToList != nil { check(kv_setopt_slist(easy, CURLOPT_CONNECT_TO, connectToList)) }
        if let proxy = tls.proxyURL { check(kv_setopt_string(easy, CURLOPT_PROXY, proxy)) }

        let context = Unmanaged.passUnretained(self).toOpaque()
        check(kv_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, transferWriteCallback))
        check(kv_setopt_pointer(easy, CURLOPT_WRITEDATA, context))
        check(kv_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, transferHeaderCallback))
        check(kv_setopt_pointer(easy, CURLOPT_HEADERDATA, context))

        if failure != CURLE_OK {
            throw HTTPError(.invalidRequest, url: request.url, reason: String(cString: curl_easy_strerror(failure)))
        }
    }

    /// True once the caller got its answer (completion or cancellation).
    var isFinished: Bool { lock.withLock { delivery == nil } }

    // MARK: Loop-thread callbacks

    func receivedHeaderLine(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            // A new status line (after 1xx or a proxy's CONNECT): start over.
            responseHeaders.removeAll()
            status = trimmed.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        } else if trimmed.isEmpty {
            if status >= 200 { headersComplete() }
        } else if let colon = trimmed.firstIndex(of: ":") {
            let name = String(trimmed[..<colon])
            let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            responseHeaders.append(HTTPHeader(name, value))
        }
    }

    private func headersComplete() {
        lock.lock()
        guard case .streaming(let head?, let stream) = delivery else {
            lock.unlock()
            return
        }
        delivery = .streaming(head: nil, body: stream)
        lock.unlock()
        // Resumed outside the lock, for the reason given in `receivedBody`: the waiting task's cancellation handler
        // takes this lock while holding that task's status lock, which a resume also takes.
        head.resume(returning: HTTPStreamingResponse(status: status, headers: responseHeaders, body: stream.stream))
    }

    /// Returns false to make libcurl abort the transfer.
    func receivedBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // A declared Content-Length over the limit fails at the first bytes instead of after reading the limit's
        // worth (64 MiB took 56 s past a 5 s --timeout in the second adversarial pass of #18).
        if received == 0, let declared = responseHeaders.last(where: { $0.name.lowercased() == "content-length" }).flatMap({ Int($0.value) }),
           declared > request.maxResponseBytes {
            exceededLimit = true
            return false
        }
        received += bytes.count
        if received > request.maxResponseBytes {
            exceededLimit = true
            return false
        }
        lock.lock()
        switch delivery {
        case .whole:
            body.append(contentsOf: bytes)
            lock.unlock()
        case .streaming(_, let stream):
            lock.unlock()
            // Yielded outside the lock: a yield resumes the reading task, which takes that task's status lock, and
            // cancelling that task runs `finish` (through the stream's onTermination) under the same status lock,
            // then waits for this lock. Holding it here deadlocked a 500-node readiness run (both threads in gdb).
            // A yield after a cancelling `finish` is dropped by the finished stream, as it should be.
            stream.continuation.yield(Array(bytes))
        case nil:
            lock.unlock()
            return false
        }
        return true
    }

    /// Called once by the loop when libcurl is done with the handle, or by cancellation. Later calls do nothing.
    func finish(_ code: CURLcode?, cancelled: Bool = false) {
        lock.lock()
        guard let delivery else {
            lock.unlock()
            return
        }
        self.delivery = nil
        lock.unlock()

        let error: (any Error)? =
            if cancelled { CancellationError() } else if let code, code != CURLE_OK { httpError(for: code) } else { nil }
        switch delivery {
        case .whole(let continuation):
            if let error {
                continuation.resume(throwing: error)
            } else {
                var code = 0
                kv_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
                continuation.resume(returning: HTTPResponse(status: code, headers: responseHeaders, body: body))
            }
        case .streaming(let head, let stream):
            if let head {
                if let error {
                    head.resume(throwing: error)
                } else {
                    // A body-less response ends before the "end of headers" callback could resume it.
                    head.resume(returning: HTTPStreamingResponse(status: status, headers: responseHeaders, body: stream.stream))
                }
            }
            stream.continuation.finish(throwing: error)
        }
    }

    private func httpError(for code: CURLcode) -> HTTPError {
        let detail = String(cString: errorBuffer)
        let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        let kind: HTTPError.Kind
        switch code {
        case CURLE_WRITE_ERROR where exceededLimit:
            return HTTPError(.tooLarge, url: request.url, reason: "body exceeds the limit of \(request.maxResponseBytes) bytes")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            kind = .connectionFailed
        case CURLE_OPERATION_TIMEDOUT:
            kind = .timedOut
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ISSUER_ERROR,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_SHUTDOWN_FAILED,
            CURLE_SSL_CLIENTCERT:
            kind = .tlsFailed
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            kind = .invalidRequest
        default:
            kind = .protocolError
        }
        return HTTPError(kind, url: request.url, reason: reason)
    }
}

private let transferWriteCallback: kv_data_callback = { pointer, size, count, context in
    guard let context else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    return transfer.receivedBody(UnsafeRawBufferPointer(start: pointer, count: length)) ? length : 0
}

private let transferHeaderCallback: kv_data_callback = { pointer, size, count, context in
    guard let context, let pointer else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    transfer.receivedHeaderLine(line)
    return length
}
