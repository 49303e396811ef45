import Findings
import Testing
@testable import Verification

@Suite("Log scan")
struct LogScanTests {
    @Test("the exporter's skipped metrics server is a named failure quoting the line")
    func skipped() {
        let log = """
            [2026-11-27 15:00:00 +0000] [1] [INFO] Starting gunicorn 23.0.0
            WARNING:gunicorn_prometheus_exporter.hooks:PROMETHEUS_MULTIPROC_DIR not set; skipping metrics server
            [2026-11-27 15:00:00 +0000] [7] [INFO] Booting worker with pid: 7
            """
        let findings = LogScan(namespace: "ns").findings(log: log, subject: "node/w pod/p container/app")
        #expect(findings.count == 1)
        let finding = findings[0]
        #expect(finding.checkID == "exporter.metrics-server-skipped")
        #expect(finding.status == .fail)
        #expect(finding.observed == "1 line(s), first: WARNING:gunicorn_prometheus_exporter.hooks:PROMETHEUS_MULTIPROC_DIR not set; skipping metrics server")
    }

    @Test("a clean log yields nothing; the sidecar hook's own INFO line is not the failure")
    func clean() {
        let log = """
            sidecar: serving metrics from redis prefix 'gunicorn-p' on 0.0.0.0:9091
            INFO:gunicorn_prometheus_exporter.hooks:Sidecar mode: skipping metrics server setup in app container
            """
        #expect(LogScan(namespace: "ns").findings(log: log, subject: "s").isEmpty)
    }
}
