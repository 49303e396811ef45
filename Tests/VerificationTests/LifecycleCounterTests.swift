import PromText
import Testing
@testable import Verification

@Suite("Lifecycle: counters across a reload, series by series")
struct LifecycleCounterTests {
    static func exposition(_ text: String) throws -> Exposition {
        try ExpositionParser.parse("# TYPE gunicorn_worker_requests_total counter\n# TYPE gunicorn_master_worker_restart_total counter\n" + text,
                                   format: .text)
    }

    static let families: Set<String> = ["gunicorn_worker_requests_total", Lifecycle.masterRestartFamily]

    @Test("a series that expired from Redis between the scrapes is counted as expired, not as a reset")
    func expiredIsNotBackwards() throws {
        let before = try Self.exposition("""
            gunicorn_worker_requests_total{worker_id="w1",pid="10"} 7
            gunicorn_worker_requests_total{worker_id="w2",pid="11"} 5
            gunicorn_master_worker_restart_total{reason="ttin"} 1

            """)
        let after = try Self.exposition("""
            gunicorn_worker_requests_total{worker_id="w2",pid="11"} 6
            gunicorn_worker_requests_total{worker_id="w3",pid="12"} 1
            gunicorn_master_worker_restart_total{reason="hup"} 1

            """)
        let comparison = Lifecycle.counterComparison(before, after, families: Self.families)
        #expect(comparison.backwards.isEmpty)
        #expect(comparison.expired == 2)
    }

    @Test("a series present in both scrapes with a lower value is named as going backwards; duplicates count once")
    func dropIsBackwards() throws {
        let before = try Self.exposition("""
            gunicorn_worker_requests_total{worker_id="w2",pid="11"} 5
            gunicorn_worker_requests_total{pid="11",worker_id="w2"} 5
            gunicorn_master_worker_restart_total{reason="ttin"} 2

            """)
        let after = try Self.exposition("""
            gunicorn_worker_requests_total{worker_id="w2",pid="11"} 3
            gunicorn_master_worker_restart_total{reason="ttin"} 2

            """)
        let comparison = Lifecycle.counterComparison(before, after, families: Self.families)
        #expect(comparison.backwards == [#"gunicorn_worker_requests_total{pid="11",worker_id="w2"} 5 → 3"#])
        #expect(comparison.expired == 0)
    }
}
