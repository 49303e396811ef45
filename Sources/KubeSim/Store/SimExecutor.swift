import Dispatch

/// Where the sim's own tasks run (its API server's connections, controllers, kubelet, streams): threads of a dispatch
/// queue of its own, not Swift's cooperative pool. A process that hosts a sim also runs other work on that pool, one
/// thread per core: a test run's hundreds of tests, or the kverify run that verifies against the sim. Queued behind
/// them, the sim answered a request only after 30 s and more on two cores; on threads of its own it gets its share of
/// the CPU from the kernel's scheduler, as a real API server in its own process does.
package final class SimExecutor: TaskExecutor {
    package static let shared = SimExecutor()

    private let queue = DispatchQueue(label: "kverify.sim", qos: .userInitiated, attributes: .concurrent)

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
