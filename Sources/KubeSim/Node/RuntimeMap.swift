import Foundation
import SimFaults
import SimStore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// How the sim's kubelet runs an image on this machine (`sim/runtime.yaml` documents the format): the first entry
/// whose glob matches the image wins; an image without an entry fails to pull.
public struct RuntimeMap: Sendable {
    public struct Entry: Sendable, Equatable {
        /// Shell glob over the full image reference (`kverify-demo-app:*`).
        public var image: String
        public var entrypoint: [String]?
        public var cmd: [String]?
        /// Absolute directories put in front of PATH.
        public var path: [String] = []
        /// Image path → absolute host path.
        public var files: [String: String] = [:]
        public var workingDir: String?
        public var env: [String: String] = [:]
        /// Absolute path of the exposition a stub serves instead of running a process.
        public var stubMetrics: String?
        /// Flags that carry a listen address (`--web.listen-address` → its default port). Programs that make
        /// raw syscalls (Go) bind without the network shim, so the kubelet pins each such flag's host to the pod's
        /// address, keeping the port, and adds the flag with the default port when the command lacks it.
        public var listenFlags: [String: Int] = [:]
        /// Run the process in its own mount namespace where the pod's volume mounts are bind-mounted at their
        /// container paths, for programs that open fixed paths without the shim (client-go's in-cluster config
        /// reads `/var/run/secrets/kubernetes.io/serviceaccount/`).
        public var mountNamespace = false
        /// Image paths that are the image's own writable directories (`/prometheus`): a fresh directory per pod,
        /// unless a volume is mounted there.
        public var scratch: [String] = []
    }

    public var entries: [Entry]
    /// Where the map came from, for messages.
    public var source: String

    public init(entries: [Entry], source: String) {
        self.entries = entries
        self.source = source
    }

    public func entry(for image: String) -> Entry? {
        entries.first { fnmatch($0.image, image, 0) == 0 }
    }

    /// Loads a map; relative paths in it are resolved against the file's directory.
    /// - Throws: `SimError` naming the file and the problem.
    public static func load(path: String) throws -> RuntimeMap {
        let url = URL(fileURLWithPath: path)
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw SimError("cannot read the runtime map \(path): \(error.localizedDescription)")
        }
        let root: Any?
        do {
            root = try Yams.load(yaml: text)
        } catch {
            throw SimError("the runtime map \(path) is not valid YAML: \(error)")
        }
        guard let document = root as? [String: Any], let images = document["images"] as? [Any] else {
            throw SimError("the runtime map \(path) needs a top-level `images:` list")
        }
        let base = url.deletingLastPathComponent()
        func absolute(_ value: String) -> String {
            value.hasPrefix("/") ? value : base.appendingPathComponent(value).standardizedFileURL.path
        }
        func strings(_ value: Any?, _ field: String, _ index: Int) throws -> [String]? {
            guard let value else { return nil }
            guard let list = value as? [Any] else { throw SimError("\(path): images[\(index)].\(field) must be a list of strings") }
            return list.map { "\($0)" }
        }
        func map(_ value: Any?, _ field: String, _ index: Int) throws -> [String: String] {
            guard let value else { return [:] }
            guard let dictionary = value as? [String: Any] else { throw SimError("\(path): images[\(index)].\(field) must be a mapping") }
            return dictionary.mapValues { "\($0)" }
        }
        let entries = try images.enumerated().map { index, item -> Entry in
            guard let fields = item as? [String: Any], let image = fields["image"] as? String, !image.isEmpty else {
                throw SimError("\(path): images[\(index)] needs an `image` pattern")
            }
            let known: Set<String> = ["image", "entrypoint", "cmd", "path", "files", "workingDir", "env", "stub", "listenFlags",
                                      "mountNamespace", "scratch"]
            if let unknown = fields.keys.first(where: { !known.contains($0) }) {
                throw SimError("\(path): images[\(index)] (\(image)) has an unknown field `\(unknown)`; known: \(known.sorted().joined(separator: ", "))")
            }
            var entry = Entry(image: image)
            entry.entrypoint = try strings(fields["entrypoint"], "entrypoint", index)
            entry.cmd = try strings(fields["cmd"], "cmd", index)
            entry.path = try strings(fields["path"], "path", index)?.map(absolute) ?? []
            entry.files = try map(fields["files"], "files", index).mapValues(absolute)
            entry.workingDir = fields["workingDir"] as? String
            entry.env = try map(fields["env"], "env", index)
            for (flag, port) in try map(fields["listenFlags"], "listenFlags", index) {
                guard flag.hasPrefix("-"), let number = Int(port), (1...65535).contains(number) else {
                    throw SimError("\(path): images[\(index)].listenFlags maps a flag (`--web.listen-address`) to a default port, got \(flag): \(port)")
                }
                entry.listenFlags[flag] = number
            }
            if let value = fields["mountNamespace"] {
                guard let flag = value as? Bool else { throw SimError("\(path): images[\(index)].mountNamespace must be true or false") }
                entry.mountNamespace = flag
            }
            entry.scratch = try strings(fields["scratch"], "scratch", index) ?? []
            if let bad = entry.scratch.first(where: { !$0.hasPrefix("/") || $0 == "/" }) {
                throw SimError("\(path): images[\(index)].scratch lists image directories (absolute, not /), got \(bad)")
            }
            if let stub = fields["stub"] {
                guard let metrics = (stub as? [String: Any])?["metrics"] as? String else {
                    throw SimError("\(path): images[\(index)].stub needs `metrics: FILE`")
                }
                entry.stubMetrics = absolute(metrics)
            }
            return entry
        }
        return RuntimeMap(entries: entries, source: path)
    }

    /// The map shipped in the repository (`sim/runtime.yaml`), found from `$KVERIFY_SIM_RUNTIME`, then upwards from
    /// the running executable (`.build/debug/kverify` sits inside the checkout), then upwards from the current
    /// directory.
    public static func defaultPath() -> String? {
        if let explicit = ProcessInfo.processInfo.environment["KVERIFY_SIM_RUNTIME"], !explicit.isEmpty { return explicit }
        return SimPaths.findUpwards("sim/runtime.yaml")
    }
}

/// Files the sim finds beside its executable or checkout.
package enum SimPaths {
    static var executableDirectory: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            .deletingLastPathComponent()
    }

    static func findUpwards(_ relative: String) -> String? {
        for start in [executableDirectory, URL(fileURLWithPath: FileManager.default.currentDirectoryPath)] {
            var directory = start.standardizedFileURL
            for _ in 0..<8 {
                let candidate = directory.appendingPathComponent(relative).path
                if FileManager.default.fileExists(atPath: candidate) { return candidate }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        return nil
    }

    /// The network shim (`libKVerifySimNet.so`), built beside the executable; `$KVERIFY_SIM_SHIM` overrides.
    package static func networkShim() -> String? {
        if let explicit = ProcessInfo.processInfo.environment["KVERIFY_SIM_SHIM"], !explicit.isEmpty { return explicit }
        let candidate = executableDirectory.appendingPathComponent("libKVerifySimNet.so").path
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }
}
