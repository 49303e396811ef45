import KVerifyTestSupport
import Testing

/// Every suite that starts a simulated cluster with running pods nests here, so they run one at a time: each
/// run starts redis-server and gunicorn processes, and on two cores parallel runs starve other suites' deadlines.
/// The suite holds one `SimSlots` slot, shared with the other test targets' clusters with real pods.
@Suite("Runs on the simulated cluster", .serialized, .simSlot)
struct SimRuns {}
