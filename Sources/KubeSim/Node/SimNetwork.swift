import Foundation
import Synchronization
import SimFaults
import SimStore

#if canImport(Glibc)
import Glibc
#endif

/// The addresses of one sim, all on loopback (never a private or public range): each sim claims its own
/// `127.S.0.0/16`, so several sims (parallel tests, a user's second cluster) never share a node, pod or Service
/// address or a NodePort.
///
/// | what | addresses |
/// |---|---|
/// | node i | `127.S.(i / 250).(i % 250 + 1)` — third octet 0…3 |
/// | pods | `127.S.8.1` … `127.S.253.250` |
/// | Service ClusterIPs | `127.S.254.1` … `127.S.255.250` |
/// | the claim | a listening socket on `127.S.255.254:10250`, held while the sim runs |
public final class SimNetwork: Sendable {
    /// The second octet this sim owns.
    public let octet: Int
    private let claim: Int32
    private let state = Mutex(Allocation())

    private struct Allocation {
        var nextPod = 0
        var freedPods: [Int] = []
    }

    package static let maxNodes = 1000
    static let podCapacity = 246 * 250

    /// Claims a free `/16` by binding its claim socket (another sim holding it makes the bind fail).
    public static func claim() throws -> SimNetwork {
        var candidates = Array(20...250)
        candidates.shuffle()
        for octet in candidates.prefix(60) {
            if let fd = listen(on: "127.\(octet).255.254", port: 10250) { return SimNetwork(octet: octet, claim: fd) }
        }
        throw SimError("no free loopback /16 for the sim's addresses (tried 60 of 127.20–250.0.0/16)")
    }

    private init(octet: Int, claim: Int32) {
        self.octet = octet
        self.claim = claim
    }

    deinit { close(claim) }

    public func nodeAddress(_ index: Int) -> String { "127.\(octet).\(index / 250).\(index % 250 + 1)" }

    /// A ClusterIP from the store's running Service counter.
    public func serviceAddress(_ number: Int) -> String {
        let slot = number % 500
        return "127.\(octet).\(254 + slot / 250).\(slot % 250 + 1)"
    }

    /// A free pod address; released ones are reused last-in first-out.
    public func allocatePodAddress() throws -> String {
        let index: Int = try state.withLock { state in
            if let reused = state.freedPods.popLast() { return reused }
            guard state.nextPod < Self.podCapacity else { throw SimError("the sim has no pod addresses left (\(Self.podCapacity) in use)") }
            defer { state.nextPod += 1 }
            return state.nextPod
        }
        return "127.\(octet).\(8 + index / 250).\(index % 250 + 1)"
    }

    public func releasePodAddress(_ address: String) {
        let parts = address.split(separator: ".").compactMap { Int($0) }
        guard parts.count == 4, parts[1] == octet, (8...253).contains(parts[2]) else { return }
        let index = (parts[2] - 8) * 250 + parts[3] - 1
        state.withLock { $0.freedPods.insert(index, at: 0) }
    }

    /// A listening TCP socket on `address:port`, or nil when it cannot be bound.
    static func listen(on address: String, port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, address, &socketAddress.sin_addr)
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 1) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}
