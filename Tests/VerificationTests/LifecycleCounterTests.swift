import Findings
import PromText
import RESP
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

    @Test("duplicates count once with their larger value; without expiry (multiprocess files) a vanished series went backwards")
    func duplicatesAndFiles() throws {
        let before = try Self.exposition("""
            gunicorn_worker_requests_total{worker_id="w2",pid="11"} 4
            gunicorn_worker_requests_total{worker_id="w2",pid="11"} 6
            gunicorn_worker_requests_total{worker_id="w1",pid="10"} 2

            """)
        let after = try Self.exposition("""
            gunicorn_worker_requests_total{worker_id="w2",pid="11"} 5

            """)
        let redis = Lifecycle.counterComparison(before, after, families: Self.families)
        #expect(redis.backwards == [#"gunicorn_worker_requests_total{pid="11",worker_id="w2"} 6 → 5"#])
        #expect(redis.expired == 1)
        let files = Lifecycle.counterComparison(before, after, families: Self.families, seriesExpire: false)
        #expect(files.backwards == [#"gunicorn_worker_requests_total{pid="10",worker_id="w1"} 2 → gone"#,
                                    #"gunicorn_worker_requests_total{pid="11",worker_id="w2"} 6 → 5"#])
        #expect(files.expired == 0)
    }

    @Test("gunicorn's kill of a pid is found in the log, and not for a pid it is a prefix of")
    func timeoutKillInLog() {
        let log = "[2026-12-01 01:39:43 +0000] [17203] [CRITICAL] WORKER TIMEOUT (pid:123)\n[ERROR] Worker (pid:123) was sent SIGKILL!\n"
        #expect(Lifecycle.logShowsTimeoutKill(log, pid: 123))
        #expect(!Lifecycle.logShowsTimeoutKill(log, pid: 12))
        #expect(!Lifecycle.logShowsTimeoutKill(log, pid: 1234))
    }

    @Test("sample values as text: whole numbers without .0; +Inf, NaN and huge values printed, not trapped on")
    func numberText() {
        #expect(Lifecycle.number(2) == "2")
        #expect(Lifecycle.number(-3) == "-3")
        #expect(Lifecycle.number(2.5) == "2.5")
        #expect(Lifecycle.number(.infinity) == "inf")
        #expect(Lifecycle.number(.nan) == "nan")
        #expect(Lifecycle.number(1e20) == "1e+20")
    }

    @Test("hung workers are attributed to the prefix of their own pod; a shared prefix says a pid may be another pod's")
    func killedWriterReasons() {
        let web1 = PodTarget(pod: "web-1", node: "n1", keyPrefix: "shop-web-1"), web2 = PodTarget(pod: "web-2", node: "n2", keyPrefix: "shop-web-2")
        var check = RedisCheck(endpoint: RedisEndpoint(host: "127.0.0.1", port: 6379), ttlSeconds: 30)
        check.killedWriters = [.init(pod: "web-1", pid: 7, signal: "QUIT"), .init(pod: "web-2", pid: 7, signal: "ABRT")]
        #expect(check.killedWriterReasons(of: [web1]) == [7: "worker pid 7 of pod web-1 hung on the lifecycle phase's SIGQUIT and was killed by gunicorn"])
        #expect(check.killedWriterReasons(of: [PodTarget(pod: "web-3", node: "n3", keyPrefix: "x")]) == [:])
        let shared = check.killedWriterReasons(of: [web1, web2])[7] ?? ""
        #expect(shared.hasPrefix("worker pid 7 of pod web-1 hung on the lifecycle phase's SIGQUIT and was killed by gunicorn; worker pid 7 of pod web-2 hung"), "\(shared)")
        #expect(shared.hasSuffix("(the prefix is shared by 2 pods: a worker of another pod with the same pid cannot be told apart)"))
    }

    @Test("the deleted pod's keys: none refreshed since it went passes, one with more TTL left than that fails, none left passes")
    func deletedPodKeys() {
        let pod = PodTarget(pod: "web-1", node: "n1", keyPrefix: "shop-web-1")
        let goneAt = ContinuousClock.now - .seconds(10)
        let quiet = Shutdown.keysFinding(pod, goneAt: goneAt, ttlSeconds: 30, alive: 12, longestMilliseconds: 19_500)
        #expect(quiet.status == .pass, "\(quiet)")
        #expect(quiet.observed?.hasSuffix("the longest with 19.5 s to live: none refreshed since") == true, "\(quiet)")
        let written = Shutdown.keysFinding(pod, goneAt: goneAt, ttlSeconds: 30, alive: 12, longestMilliseconds: 29_000)
        #expect(written.status == .fail, "\(written)")
        #expect(written.subject.hasSuffix("shop-web-1:*"))
        #expect(Shutdown.keysFinding(pod, goneAt: goneAt, ttlSeconds: 30, alive: 0, longestMilliseconds: nil).status == .pass)
        #expect(Shutdown.keysFinding(pod, goneAt: goneAt, ttlSeconds: 30, alive: 3, longestMilliseconds: nil).status == .warn)
    }

    @Test("the master's samples: a futex wait in every one, or a zombie child in every one, is a stalled master; select, or a zombie reaped meanwhile, is not")
    func masterStallSamples() throws {
        let locked = try #require(Lifecycle.MasterStall(samples: "futex_do_wait|\nfutex_do_wait| 41\nfutex_wait_queue| 41 42\n"))
        #expect(locked == Lifecycle.MasterStall(samples: "futex_do_wait|\nfutex_do_wait| 41\nfutex_wait_queue| 41 42\n"))
        #expect(locked.isStalled && locked.lockedSamples == 3 && locked.waitChannels == ["futex_do_wait", "futex_wait_queue"] && locked.zombies.isEmpty)
        let unreaped = try #require(Lifecycle.MasterStall(samples: "0| 41\n0| 41 42\n0| 42 41\n"))
        #expect(unreaped.isStalled && unreaped.lockedSamples == 0 && unreaped.zombies == [41])
        let alive = try #require(Lifecycle.MasterStall(samples: "poll_schedule_timeout.constprop.0|\nfutex_do_wait| 41\ndo_select|\n"))
        #expect(!alive.isStalled && alive.lockedSamples == 1 && alive.zombies.isEmpty)
        #expect(Lifecycle.MasterStall(samples: "futex_do_wait|\nfutex_do_wait|\n")?.isStalled == false, "two samples are too few")
        #expect(Lifecycle.MasterStall(samples: "sh: cannot open /proc/7/wchan\n") == nil)
    }
}
