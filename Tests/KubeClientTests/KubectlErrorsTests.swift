@testable import KubeClient
import HTTP
import Testing

/// kubectl's stderr as kubectl 1.32 printed it against the sim's fault plan (`api: {errors: …}`).
@Suite("kubectl's stderr: which failures are transient")
struct KubectlErrorsTests {
    static let discoveryLog = #"E1201 05:10:20.419051   18692 memcache.go:265] "Unhandled Error" err="couldn't get current server API group list: an error on the server (\"unknown\") has prevented the request from succeeding""#

    @Test("a Status reason or client-go's generic words name the status retried; answers are not retried", arguments: [
        ("Error from server (InternalError): kverify sim fault: an error on the server (\"injected\") has prevented the request from succeeding", "HTTP 500"),
        ("Error from server (ServiceUnavailable): kverify sim fault: the server is currently unable to handle the request", "HTTP 503"),
        ("Error from server (TooManyRequests): the server has received too many requests and has asked us to try again later", "HTTP 429"),
        ("error: unable to recognize \"STDIN\": an error on the server (\"unknown\") has prevented the request from succeeding", "HTTP 500"),
        ("error: error validating \"STDIN\": error validating data: failed to download openapi: the server could not find the requested resource", "OpenAPI download failed"),
        ("read tcp 127.0.0.1:5555->127.0.0.1:6443: read: connection reset by peer", "connection reset"),
        ("error: error reading from error stream: next reader: websocket: close 1006 (abnormal closure): unexpected EOF", "connection lost"),
        ("Error from server (NotFound): pods \"nosuch\" not found", nil),
        // A discovery hiccup logged on the way does not make a NotFound transient.
        (discoveryLog + "\nError from server (NotFound): pods \"nosuch\" not found", nil),
        ("Error from server (Forbidden): pods is forbidden: User \"u\" cannot list resource \"pods\"", nil),
        ("error: the server doesn't have a resource type \"widgets\"", nil),
    ] as [(String, String?)])
    func transient(stderr: String, cause: String?) {
        #expect(KubectlErrors.transientCause(stderr: stderr) == cause)
    }

    @Test("a failed exec runs again only when its command cannot have started", arguments: [
        ("", "Error from server (InternalError): kverify sim fault: an error on the server (\"injected\") has prevented the request from succeeding", true),
        ("", "error: unable to upgrade connection: kverify sim fault: the server is currently unable to handle the request", true),
        // Lost mid-stream: transient, but the command may have run.
        ("", "error: error reading from error stream: next reader: websocket: close 1006 (abnormal closure): unexpected EOF", false),
        ("", "E1201 05:11:02.000000   18692 v2.go:167] \"Unhandled Error\" err=\"next reader: read tcp 127.0.0.1:5555->127.0.0.1:6443: read: connection reset by peer\"\nerror: read tcp 127.0.0.1:5555->127.0.0.1:6443: read: connection reset by peer", false),
        // Something came out of the command: it ran.
        ("12\n", "Error from server (InternalError): an error on the server (\"\") has prevented the request from succeeding", false),
    ] as [(String, String, Bool)])
    func execRetry(stdout: String, stderr: String, retry: Bool) {
        #expect(KubectlErrors.execMayRetry(stdout: Array(stdout.utf8), stderr: stderr) == retry)
    }

    @Test("client-go's klog lines are dropped from the message, unless they are all there is")
    func logLines() {
        let stderr = Self.discoveryLog + "\nError from server (NotFound): pods \"nosuch\" not found\n"
        #expect(KubectlErrors.withoutLogLines(stderr) == "Error from server (NotFound): pods \"nosuch\" not found")
        #expect(KubectlErrors.withoutLogLines(Self.discoveryLog) == Self.discoveryLog)
    }
}

/// libcurl's words (7.88, `curl_easy_strerror` and its error buffer) for a connection the server dropped: an
/// idempotent REST call retries them; a refusal, a TLS failure or an answer does not.
@Suite("REST transport errors: which are a dropped connection")
struct RESTResetTests {
    @Test("dropped connections, HTTP/2's among them, are resets", arguments: [
        "Error in the HTTP2 framing layer",
        "Stream error in the HTTP/2 framing layer",
        "Recv failure: Connection reset by peer",
        "Empty reply from server",
        "transfer closed with 120 bytes remaining to read",
    ])
    func resets(reason: String) {
        #expect(RESTBackend.isReset(HTTPError(.protocolError, url: "https://127.0.0.1:6443/api", reason: reason)))
    }

    @Test("TLS failures and other kinds are not", arguments: [
        (HTTPError.Kind.protocolError, "OpenSSL SSL_read: error:0A000412:SSL routines::sslv3 alert bad certificate, errno 0"),
        (.connectionFailed, "Failed to connect to 127.0.0.1 port 6443: Connection refused"),
        (.timedOut, "Operation timed out after 20001 milliseconds with 0 bytes received"),
    ])
    func notResets(kind: HTTPError.Kind, reason: String) {
        #expect(!RESTBackend.isReset(HTTPError(kind, url: "https://127.0.0.1:6443/api", reason: reason)))
    }
}
