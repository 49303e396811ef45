import Synchronization

/// A flag that goes from unset to set once, readable and settable from any thread without a lock: for code that
/// must not wait for a lock (a cancellation handler, `onTermination`) or that only needs to know "has it happened".
package final class OnceFlag: Sendable {
    private let flag = Atomic(false)

    package init() {}

    package var isSet: Bool { flag.load(ordering: .acquiring) }

    package func set() { flag.store(true, ordering: .releasing) }
}
