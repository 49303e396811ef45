import Foundation
import KubeModel
import SimNode
import Testing

/// `--sim` checks what it needs before it starts (SimPrerequisites).
@Suite("Sim prerequisites")
struct PrerequisitesTests {
    @Test("a runtime-map entry whose program lives in a missing .venv is named, with scripts/bootstrap.sh as the next step")
    func missingVenv() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-prereq-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let map = directory.appendingPathComponent("runtime.yaml")
        try """
            images:
              - image: "app:*"
                path: ["nowhere/.venv/bin"]
                cmd: ["gunicorn-that-is-not-installed", "app:application"]
              - image: "redis:*"
                entrypoint: ["redis-server"]
            """.write(to: map, atomically: false, encoding: .utf8)
        let problems = SimPrerequisites.problems(containers: [("app:dev", nil), ("app:dev", ["gunicorn-that-is-not-installed", "-c", "x"]),
                                                              ("redis:7", nil), ("unknown:1", nil)],
                                                 runtimePath: map.path).filter { !$0.contains("network shim") }
        #expect(problems == ["image app:dev runs `gunicorn-that-is-not-installed` (runtime map \(map.path), entry \"app:*\"), which is not on its PATH "
            + "\(directory.path)/nowhere/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin: run scripts/bootstrap.sh to create "
            + "\(directory.path)/nowhere/.venv/bin"])
    }

    @Test("containers are read from workloads' pod templates and from pods, init containers first")
    func containers() {
        let objects: [KubeModel.JSONValue] = [
            ["kind": "DaemonSet", "spec": ["template": ["spec": ["initContainers": [["image": "redis:7", "command": ["redis-cli"]]],
                                                                 "containers": [["image": "app:1"]]]]]],
            ["kind": "Pod", "spec": ["containers": [["image": "busybox"]]]],
            ["kind": "Service", "spec": ["ports": []]],
        ]
        let found = SimPrerequisites.containers(of: objects)
        #expect(found.map(\.image) == ["redis:7", "app:1", "busybox"])
        #expect(found.map(\.command) == [["redis-cli"], nil, nil])
    }
}
