import Foundation
@testable import KVerifyCommands
import KubeModel
import Testing

/// The per-node table a terminal shows during the rollout wait.
@Suite("progress table")
struct ProgressTableTests {
    static func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    @Test("one row per node, its pods with Ready, a waiting reason or the phase; a node without pods shows -")
    func rowsPerNode() throws {
        let nodes = try ["worker-a", "worker-b", "worker-c"].map { name in
            try Self.decode(Node.self, #"{"metadata":{"name":"\#(name)"},"status":{"conditions":[{"type":"Ready","status":"\#(name == "worker-c" ? "False" : "True")"}]}}"#)
        }
        let pods = try [
            #"{"metadata":{"name":"exp-1"},"spec":{"nodeName":"worker-a","containers":[]},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
            #"{"metadata":{"name":"exp-2"},"spec":{"nodeName":"worker-b","containers":[]},"status":{"phase":"Pending","containerStatuses":[{"name":"app","ready":false,"restartCount":0,"image":"x","imageID":"","state":{"waiting":{"reason":"ImagePullBackOff"}}}]}}"#,
            #"{"metadata":{"name":"exp-3"},"spec":{"nodeName":"worker-b","containers":[]},"status":{"phase":"Pending"}}"#,
        ].map { try Self.decode(Pod.self, $0) }
        let rows = Progress.nodeRows(pods: pods, nodes: nodes)
        #expect(rows.count == 3)
        #expect(rows[0].hasPrefix("  worker-a ") && rows[0].hasSuffix("Ready    exp-1 Ready"), "\(rows[0])")
        #expect(rows[1].hasSuffix("Ready    exp-2 ImagePullBackOff, exp-3 Pending"), "\(rows[1])")
        #expect(rows[2].hasSuffix("NotReady -"), "\(rows[2])")
    }
}
