import Foundation
import SimFaults
import SimStore
import KubeModel

/// Why a container cannot be created from its spec: the kubelet's `CreateContainerConfigError` (a missing
/// ConfigMap or Secret key) or `CreateContainerError`.
package struct ContainerConfigError: Error {
    var reason: String
    var message: String
}

/// Turns a pod's container spec into what a process needs, the way the kubelet and a container runtime do:
/// env from the spec (downward API, ConfigMap/Secret refs, Service variables) with `$(VAR)` expansion, the image's
/// entrypoint and cmd from the runtime map, and image or volume paths mapped to host directories.
package struct PodEnvironment {
    var pod: JSONValue
    var podIP: String
    var hostIP: String
    /// The pod's own directory (volumes live under it).
    var podDirectory: URL
    var store: ObjectStore
    /// `NAME_SERVICE_HOST` / `NAME_SERVICE_PORT` for the Services of the namespace at start, as enableServiceLinks.
    var serviceVariables: [(String, String)]
    var hostsFile: String
    var shim: String?

    var namespace: String { pod.string(at: "metadata", "namespace") ?? "default" }
    var podName: String { pod.string(at: "metadata", "name") ?? "" }

    /// The process to start for `container` with the runtime `entry`.
    func launch(_ container: JSONValue, entry: RuntimeMap.Entry, logFile: String) throws -> ContainerProcess.Launch {
        let name = container["name"]?.stringValue ?? ""
        var environment: [String: String] = [:]
        var ordered: [(String, String)] = []
        func define(_ key: String, _ value: String) {
            environment[key] = value
            ordered.append((key, value))
        }
        let hostNetwork = pod.value(at: ["spec", "hostNetwork"]) == .bool(true)
        define("PATH", (entry.path + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]).joined(separator: ":"))
        // The kubelet cuts a pod's hostname to 63 characters, then of a trailing '-' or '.' (truncatePodHostnameIfNeeded).
        var podHostname = String((pod.string(at: "spec", "hostname") ?? podName).prefix(63))
        while podHostname.last == "-" || podHostname.last == "." { podHostname.removeLast() }
        define("HOSTNAME", hostNetwork ? (pod.string(at: "spec", "nodeName") ?? podName) : podHostname)
        define("HOME", podDirectory.path)
        for (key, value) in entry.env.sorted(by: { $0.key < $1.key }) { define(key, value) }
        // The API server's variables are set even without service links, as the kubelet does.
        let serviceLinks = pod.value(at: ["spec", "enableServiceLinks"]) != .bool(false)
        for (key, value) in serviceVariables where serviceLinks || key.hasPrefix("KUBERNETES_SERVICE_") { define(key, value) }
        for source in container["envFrom"]?.arrayValue ?? [] {
            let prefix = source["prefix"]?.stringValue ?? ""
            for (key, value) in try keyValues(source) { define(prefix + key, value) }
        }
        for variable in container["env"]?.arrayValue ?? [] {
            guard let key = variable["name"]?.stringValue else { continue }
            if let value = variable["value"]?.stringValue {
                define(key, EnvExpansion.expand(value, environment))
            } else if let from = variable["valueFrom"] {
                if let value = try valueFrom(from, container: container) { define(key, value) }
            } else {
                define(key, "")
            }
        }
        // The sim's own plumbing (the network shim reads these); set last so a spec cannot break isolation.
        environment["KVERIFY_POD_IP"] = podIP
        environment["KVERIFY_HOSTS_FILE"] = hostsFile
        if let shim { environment["LD_PRELOAD"] = [shim, environment["LD_PRELOAD"]].compactMap { $0 }.joined(separator: ":") }

        let commandSpec = container["command"]?.arrayValue?.compactMap(\.stringValue)
        let argsSpec = container["args"]?.arrayValue?.compactMap(\.stringValue)
        var command = (commandSpec ?? entry.entrypoint ?? []).map { EnvExpansion.expand($0, environment) }
        let arguments = (argsSpec ?? (commandSpec == nil ? entry.cmd ?? [] : [])).map { EnvExpansion.expand($0, environment) }
        command += arguments
        guard let executableName = command.first else {
            throw ContainerConfigError(reason: "CreateContainerError",
                                       message: "no command specified: image \(container["image"]?.stringValue ?? "") has no entrypoint or cmd in the runtime map")
        }
        if !entry.listenFlags.isEmpty { command = [command[0]] + Self.pinListenAddresses(Array(command.dropFirst()), entry.listenFlags, podIP: podIP) }
        let paths = try mounts(container, entry: entry)
        command = command.map { Self.mapPath($0, paths) }
        for (key, value) in environment where key != "PATH" && !key.hasPrefix("KVERIFY_") && key != "LD_PRELOAD" {
            environment[key] = Self.mapPath(value, paths)
        }
        let workingDirectory = Self.mapPath(container["workingDir"]?.stringValue ?? entry.workingDir ?? podDirectory.path, paths)
        guard FileManager.default.fileExists(atPath: workingDirectory) else {
            throw ContainerConfigError(reason: "CreateContainerError",
                                       message: "failed to create containerd task: chdir to cwd (\"\(workingDirectory)\") set in config.json failed: no such file or directory (container \(name))")
        }
        guard let executable = ContainerProcess.resolve(command[0], path: environment["PATH"] ?? "") else {
            // The runtime map points images at host directories (the exporter at .venv/bin): name a missing one and
            // the step that creates it, beside the runtime's own words.
            let missing = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
                .filter { !FileManager.default.fileExists(atPath: $0) }
            let hint = missing.contains { $0.contains("/.venv/") }
                ? " (the runtime map's PATH names \(missing.joined(separator: ", ")), which does not exist: run scripts/bootstrap.sh to create the .venv)"
                : ""
            throw ContainerConfigError(reason: "StartError",
                                       message: "failed to create containerd task: failed to create shim task: OCI runtime create failed: exec: \"\(executableName)\": executable file not found in $PATH" + hint)
        }
        if entry.mountNamespace {
            return try isolatedLaunch(executable: executable, arguments: Array(command.dropFirst()), environment: environment,
                                      workingDirectory: workingDirectory, logFile: logFile, container: container)
        }
        return ContainerProcess.Launch(executable: executable, arguments: Array(command.dropFirst()), environment: environment,
                                       workingDirectory: workingDirectory, logFile: logFile)
    }

    /// `--flag=HOST:PORT` or `--flag HOST:PORT` with HOST replaced by the pod's address; the flag added with its
    /// default port when absent.
    static func pinListenAddresses(_ arguments: [String], _ flags: [String: Int], podIP: String) -> [String] {
        var result = arguments
        func pinned(_ value: String, _ fallback: Int) -> String {
            let port = value.split(separator: ":", omittingEmptySubsequences: false).last.flatMap { Int($0) } ?? fallback
            return "\(podIP):\(port)"
        }
        for (flag, port) in flags.sorted(by: { $0.key < $1.key }) {
            var found = false
            var index = 0
            while index < result.count {
                if result[index].hasPrefix(flag + "=") {
                    result[index] = flag + "=" + pinned(String(result[index].dropFirst(flag.count + 1)), port)
                    found = true
                } else if result[index] == flag, index + 1 < result.count {
                    result[index + 1] = pinned(result[index + 1], port)
                    found = true
                    index += 1
                }
                index += 1
            }
            if !found { result.append("\(flag)=\(podIP):\(port)") }
        }
        return result
    }

    /// The process in its own mount namespace (`unshare --mount`), each volume mount bind-mounted at its container
    /// path. A mount point missing on the host is made inside an overlay of its nearest existing directory (upper
    /// and work directories in the pod's directory), so the host's tree is never written; a path whose nearest
    /// existing directory is `/` is not mounted (the command line's path rewriting still maps it).
    func isolatedLaunch(executable: String, arguments: [String], environment: [String: String], workingDirectory: String,
                        logFile: String, container: JSONValue) throws -> ContainerProcess.Launch {
        guard let unshare = ContainerProcess.resolve("unshare", path: "/usr/bin:/bin:/usr/sbin:/sbin") else {
            throw ContainerConfigError(reason: "StartError", message: "the runtime map runs this image in a mount namespace, which needs unshare (util-linux)")
        }
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        var script = ["set -e"]
        var overlaid: [String: Int] = [:]
        let volumePaths = try mounts(container, entry: RuntimeMap.Entry(image: "")).filter { ($0.1 as String).hasPrefix("/") }
        for (containerPath, hostPath) in volumePaths.reversed() {  // shortest first: a mount inside another comes later
            var ancestor = URL(fileURLWithPath: containerPath)
            while !FileManager.default.fileExists(atPath: ancestor.path), ancestor.path != "/" { ancestor.deleteLastPathComponent() }
            let existing = ancestor.resolvingSymlinksInPath().path
            let target = existing + String(containerPath.dropFirst(ancestor.path.count))
            if existing == "/" { continue }
            if ancestor.path != containerPath, overlaid[existing] == nil {
                let number = overlaid.count
                overlaid[existing] = number
                let upper = podDirectory.appendingPathComponent("overlays/\(number)/upper"), work = podDirectory.appendingPathComponent("overlays/\(number)/work")
                try FileManager.default.createDirectory(at: upper, withIntermediateDirectories: true)
                try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
                script.append("mount -t overlay overlay -o \(quoted("lowerdir=\(existing),upperdir=\(upper.path),workdir=\(work.path)")) \(quoted(existing))")
            }
            script.append("mkdir -p \(quoted(target)) && mount --bind \(quoted(hostPath)) \(quoted(target))")
        }
        script.append("exec \"$@\"")
        var options = ["--mount", "--propagation", "private"]
        if getuid() != 0 { options += ["--user", "--map-root-user"] }
        return ContainerProcess.Launch(executable: unshare, arguments: options + ["/bin/sh", "-c", script.joined(separator: "\n"), "sh", executable] + arguments,
                                       environment: environment, workingDirectory: workingDirectory, logFile: logFile)
    }

    /// Rewrites an image or volume path to its host directory (the longest matching prefix wins).
    static func mapPath(_ value: String, _ paths: [(String, String)]) -> String {
        guard value.hasPrefix("/") else { return value }
        for (imagePath, hostPath) in paths where value == imagePath || value.hasPrefix(imagePath.hasSuffix("/") ? imagePath : imagePath + "/") {
            return hostPath + value.dropFirst(imagePath.count)
        }
        return value
    }

    /// Image paths from the runtime map and the container's volume mounts, longest first.
    func mounts(_ container: JSONValue, entry: RuntimeMap.Entry) throws -> [(String, String)] {
        var paths = entry.files.map { ($0.key, $0.value) }
        let volumes = pod.value(at: ["spec", "volumes"])?.arrayValue ?? []
        for mount in container["volumeMounts"]?.arrayValue ?? [] {
            guard let name = mount["name"]?.stringValue, let mountPath = mount["mountPath"]?.stringValue else { continue }
            guard let volume = volumes.first(where: { $0["name"]?.stringValue == name }) else {
                throw ContainerConfigError(reason: "CreateContainerConfigError", message: "volume \"\(name)\" not found in pod spec")
            }
            var host = try volumeDirectory(volume, name: name)
            if let subPath = mount["subPath"]?.stringValue, !subPath.isEmpty {
                host = host.appendingPathComponent(subPath)
                try? FileManager.default.createDirectory(at: host, withIntermediateDirectories: true)
            }
            paths.append((mountPath, host.path))
        }
        for directory in entry.scratch where !paths.contains(where: { $0.0 == directory }) {
            let host = podDirectory.appendingPathComponent("rootfs" + directory)
            try? FileManager.default.createDirectory(at: host, withIntermediateDirectories: true)
            paths.append((directory, host.path))
        }
        return paths.sorted { $0.0.count > $1.0.count }
    }

    /// Where a volume lives on the host: emptyDir and PVCs under the sim's state, ConfigMap/Secret contents
    /// written as files, hostPath as itself.
    func volumeDirectory(_ volume: JSONValue, name: String) throws -> URL {
        var directory = podDirectory.appendingPathComponent("volumes/\(name)")
        if let hostPath = volume.value(at: ["hostPath", "path"])?.stringValue { return URL(fileURLWithPath: hostPath) }
        if let claim = volume.value(at: ["persistentVolumeClaim", "claimName"])?.stringValue {
            // A volume outlives its pods: one directory per claim beside the pods' directories, named like the volume
            // provisioned for it (`pvc-<claim uid>`), so a claim deleted and made again gets a new, empty one, as
            // local-path gives it. Nil only for a claim that is gone, whose pod the scheduler would not have placed.
            let uid = (try? store.get(ResourceCatalog.persistentVolumeClaims, namespace: namespace, name: claim))?.string(at: "metadata", "uid")
            directory = podDirectory.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("claims/" + (uid.map { "pvc-\($0)" } ?? "\(namespace)_\(claim)"))
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        if let configMap = volume["configMap"] {
            try writeKeys(resource: "configmaps", name: configMap["name"]?.stringValue ?? "", optional: configMap["optional"] == .bool(true),
                          items: configMap["items"], into: directory)
        } else if let secret = volume["secret"] {
            try writeKeys(resource: "secrets", name: secret["secretName"]?.stringValue ?? "", optional: secret["optional"] == .bool(true),
                          items: secret["items"], into: directory)
        } else if let sources = volume.value(at: ["projected", "sources"])?.arrayValue {
            try writeProjection(sources, into: directory)
        }
        return directory
    }

    /// A projected volume: ServiceAccount token, ConfigMap and Secret keys, downward API fields, in one directory
    /// (the `kube-api-access-*` volume every pod gets is one).
    private func writeProjection(_ sources: [JSONValue], into directory: URL) throws {
        for source in sources {
            if let projection = source["serviceAccountToken"] {
                let account = pod.string(at: "spec", "serviceAccountName") ?? "default"
                guard let object = try? store.get(ResourceCatalog.serviceAccounts, namespace: namespace, name: account),
                      let uid = object.string(at: "metadata", "uid") else {
                    throw ContainerConfigError(reason: "CreateContainerConfigError",
                                               message: "failed to fetch token: serviceaccounts \"\(account)\" not found")
                }
                let token = store.serviceAccountTokens.issue(for: .init(namespace: namespace, name: account, uid: uid))
                write(token, to: projection["path"]?.stringValue ?? "token", in: directory)
            } else if let configMap = source["configMap"] {
                try writeKeys(resource: "configmaps", name: configMap["name"]?.stringValue ?? "", optional: configMap["optional"] == .bool(true),
                              items: configMap["items"], into: directory)
            } else if let secret = source["secret"] {
                try writeKeys(resource: "secrets", name: secret["name"]?.stringValue ?? "", optional: secret["optional"] == .bool(true),
                              items: secret["items"], into: directory)
            } else if let items = source.value(at: ["downwardAPI", "items"])?.arrayValue {
                for item in items {
                    guard let path = item["path"]?.stringValue, let fieldRef = item["fieldRef"] else { continue }
                    write(try valueFrom(["fieldRef": fieldRef], container: [:]) ?? "", to: path, in: directory)
                }
            }
        }
    }

    private func write(_ value: String, to path: String, in directory: URL) {
        let file = directory.appendingPathComponent(path)
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: file.path, contents: Data(value.utf8), attributes: [.posixPermissions: 0o600])
    }

    /// Writes a ConfigMap's or Secret's keys as files: all of them, or only `items` (`key` → `path`).
    private func writeKeys(resource: String, name: String, optional: Bool, items: JSONValue? = nil, into directory: URL) throws {
        let type = ResourceCatalog.find(group: "", version: "v1", plural: resource)!
        guard let object = try? store.get(type, namespace: namespace, name: name) else {
            if optional { return }
            throw ContainerConfigError(reason: "CreateContainerConfigError", message: "\(type.singular) \"\(name)\" not found")
        }
        let data = Self.data(of: object)
        if let items = items?.arrayValue {
            for item in items {
                guard let key = item["key"]?.stringValue, let path = item["path"]?.stringValue else { continue }
                guard let value = data[key] else {
                    if optional { continue }
                    throw ContainerConfigError(reason: "CreateContainerConfigError", message: "couldn't find key \(key) in \(type.kind) \(namespace)/\(name)")
                }
                write(value, to: path, in: directory)
            }
            return
        }
        for (key, value) in data { write(value, to: key, in: directory) }
    }

    /// A ConfigMap's `data`, or a Secret's `data` (base64) and `stringData`.
    static func data(of object: JSONValue) -> [String: String] {
        var values: [String: String] = [:]
        let secret = object.string(at: "kind") == "Secret"
        for (key, value) in object["data"]?.objectValue ?? [:] {
            guard let text = value.stringValue else { continue }
            values[key] = secret ? Data(base64Encoded: text).map { String(decoding: $0, as: UTF8.self) } ?? "" : text
        }
        for (key, value) in object["stringData"]?.objectValue ?? [:] { values[key] = value.stringValue ?? "" }
        return values
    }

    private func keyValues(_ source: JSONValue) throws -> [(String, String)] {
        for (field, plural) in [("configMapRef", "configmaps"), ("secretRef", "secrets")] {
            guard let reference = source[field], let name = reference["name"]?.stringValue else { continue }
            let type = ResourceCatalog.find(group: "", version: "v1", plural: plural)!
            guard let object = try? store.get(type, namespace: namespace, name: name) else {
                if reference["optional"] == .bool(true) { return [] }
                throw ContainerConfigError(reason: "CreateContainerConfigError", message: "\(type.singular) \"\(name)\" not found")
            }
            return Self.data(of: object).sorted { $0.key < $1.key }
        }
        return []
    }

    private func valueFrom(_ from: JSONValue, container: JSONValue) throws -> String? {
        if let path = from.value(at: ["fieldRef", "fieldPath"])?.stringValue {
            switch path {
            case "metadata.name": return podName
            case "metadata.namespace": return namespace
            case "metadata.uid": return pod.string(at: "metadata", "uid")
            case "spec.nodeName": return pod.string(at: "spec", "nodeName")
            case "spec.serviceAccountName": return pod.string(at: "spec", "serviceAccountName") ?? "default"
            case "status.podIP", "status.podIPs": return podIP
            case "status.hostIP", "status.hostIPs": return hostIP
            default:
                for field in ["labels", "annotations"] where path.hasPrefix("metadata.\(field)['") && path.hasSuffix("']") {
                    let key = String(path.dropFirst("metadata.\(field)['".count).dropLast(2))
                    return pod.value(at: ["metadata", field, key])?.stringValue ?? ""
                }
                throw ContainerConfigError(reason: "CreateContainerConfigError", message: "unsupported fieldPath: \(path)")
            }
        }
        if let resource = from.value(at: ["resourceFieldRef", "resource"])?.stringValue {
            let parts = resource.split(separator: ".").map(String.init)
            return container.value(at: ["resources"] + parts)?.stringValue ?? "0"
        }
        for (field, plural) in [("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")] {
            guard let reference = from[field], let name = reference["name"]?.stringValue, let key = reference["key"]?.stringValue else { continue }
            let type = ResourceCatalog.find(group: "", version: "v1", plural: plural)!
            let optional = reference["optional"] == .bool(true)
            guard let object = try? store.get(type, namespace: namespace, name: name) else {
                if optional { return nil }
                throw ContainerConfigError(reason: "CreateContainerConfigError", message: "\(type.singular) \"\(name)\" not found")
            }
            guard let value = Self.data(of: object)[key] else {
                if optional { return nil }
                throw ContainerConfigError(reason: "CreateContainerConfigError", message: "couldn't find key \(key) in \(type.kind) \(namespace)/\(name)")
            }
            return value
        }
        return nil
    }
}
