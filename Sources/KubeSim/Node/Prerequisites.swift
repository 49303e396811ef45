import Foundation
import KubeModel
import Processes

/// What a sim needs on this machine before it starts pods, checked up front so a missing piece is one clear usage
/// error with its next step instead of pods that fail one by one (or, without the shim, share the host's ports).
public enum SimPrerequisites {
    /// The problems, each with the step that fixes it; empty when the sim can run these containers.
    /// - Parameters:
    ///   - containers: the images the run will start and each container's `command` (nil: the image's entrypoint).
    ///   - runtimePath: the runtime map the sim will use (nil: `sim/runtime.yaml` of the checkout).
    public static func problems(containers: [(image: String, command: [String]?)], runtimePath: String? = nil) -> [String] {
        var problems = shimProblem().map { [$0] } ?? []
        let map: RuntimeMap
        do {
            guard let path = runtimePath ?? RuntimeMap.defaultPath() else {
                return problems + ["the sim found no runtime map (sim/runtime.yaml beside its checkout); pass --runtime FILE"]
            }
            map = try RuntimeMap.load(path: path)
        } catch {
            return problems + ["\(error)"]
        }
        var seen: Set<String> = []
        for container in containers {
            // An image the map does not know fails to pull, as on a real cluster: that is a verdict, not a prerequisite.
            guard let entry = map.entry(for: container.image), entry.stubMetrics == nil,
                  let program = container.command?.first ?? entry.entrypoint?.first ?? entry.cmd?.first else { continue }
            let mapped = entry.files.first { program == $0.key || program.hasPrefix($0.key + "/") }
                .map { $0.value + program.dropFirst($0.key.count) } ?? program
            let path = (entry.path + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]).joined(separator: ":")
            guard Spawn.resolve(mapped, path: path) == nil, seen.insert("\(entry.image) \(mapped)").inserted else { continue }
            let missing = entry.path.filter { !FileManager.default.fileExists(atPath: $0) }
            let step = missing.contains { $0.contains("/.venv") }
                ? "run scripts/bootstrap.sh to create \(missing.joined(separator: ", "))"
                : "install \(mapped) on this machine, or change the entry in \(map.source)"
            problems.append("image \(container.image) runs `\(mapped)` (runtime map \(map.source), entry \"\(entry.image)\"), which is not on "
                + "its PATH \(path): \(step)")
        }
        return problems
    }

    /// Why the network shim (each pod's own loopback address and ports) cannot be loaded, with the step that fixes
    /// it; nil when it can. Without it, pods would share the host's ports and collide.
    public static func shimProblem() -> String? {
        let explicit = ProcessInfo.processInfo.environment["KVERIFY_SIM_SHIM"].flatMap { $0.isEmpty ? nil : $0 }
        switch SimPaths.networkShim() {
        case .none:
            return "the sim's network shim libKVerifySimNet.so is not beside the kverify executable "
                + "(\(SimPaths.executableDirectory.path)) and KVERIFY_SIM_SHIM is not set: build it with `swift build --product KVerifySimNet`"
        case .some(let path) where !FileManager.default.fileExists(atPath: path):
            return "the sim's network shim \(path)\(explicit == path ? " (KVERIFY_SIM_SHIM)" : "") does not exist: "
                + "build it with `swift build --product KVerifySimNet`, or point KVERIFY_SIM_SHIM at the built libKVerifySimNet.so"
        default:
            return nil
        }
    }

    /// The images and commands of every container (init containers too) of the workloads and pods among `objects`.
    public static func containers(of objects: [JSONValue]) -> [(image: String, command: [String]?)] {
        objects.flatMap { object -> [JSONValue] in
            let spec = object["kind"]?.stringValue == "Pod" ? object["spec"] : object.value(at: ["spec", "template", "spec"])
            return (spec?["initContainers"]?.arrayValue ?? []) + (spec?["containers"]?.arrayValue ?? [])
        }.compactMap { container in
            guard let image = container["image"]?.stringValue else { return nil }
            return (image, container["command"]?.arrayValue?.compactMap(\.stringValue))
        }
    }
}
