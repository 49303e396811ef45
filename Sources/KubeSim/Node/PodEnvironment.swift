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
        define("HOSTNAME", hostNetwork ? (pod.string(at: "spec", "nodeName") ?? podName) : podName)
        define("HOME", podDirectory.path)
        for (key, value) in entry.env.sorted(by: { $0.key < $1.key }) { define(key, value) }
        if pod.value(at: ["spec", "enableServiceLinks"]) != .bool(false) {
            for (key, value) in serviceVariables { define(key, value) }
        }
        for source in container["envFrom"]?.arrayValue ?? [] {
            let prefix = source["prefix"]?.stringValue ?? ""
            for (key, value) in try keyValues(source) { define(prefix + key, value) }
        }
        for variable in container["env"]?.arrayValue ?? [] {
            guard let key = variable["name"]?.stringValue else { continue }
            if let value = variable["value"]?.stringValue {
                define(key, Self.expand(value, environment))
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
        var command = (commandSpec ?? entry.entrypoint ?? []).map { Self.expand($0, environment) }
        let arguments = (argsSpec ?? (commandSpec == nil ? entry.cmd ?? [] : [])).map { Self.expand($0, environment) }
        command += arguments
        guard let executableName = command.first else {
            throw ContainerConfigError(reason: "CreateContainerError",
                                       message: "no command specified: image \(container["image"]?.stringValue ?? "") has no entrypoint or cmd in the runtime map")
        }
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
        return ContainerProcess.Launch(executable: executable, arguments: Array(command.dropFirst()), environment: environment,
                                       workingDirectory: workingDirectory, logFile: logFile)
    }

    /// Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$` escapes, unknown references stay.
    static func expand(_ text: String, _ environment: [String: String]) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "$", next < text.endIndex {
                if text[next] == "$" {
                    result.append("$")
                    index = text.index(after: next)
                    continue
                }
                if text[next] == "(", let close = text[next...].firstIndex(of: ")") {
                    let name = String(text[text.index(after: next)..<close])
                    if let value = environment[name] {
                        result += value
                    } else {
                        result += text[index...close]
                    }
                    index = text.index(after: close)
                    continue
                }
            }
            result.append(character)
            index = next
        }
        return result
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
        return paths.sorted { $0.0.count > $1.0.count }
    }

    /// Where a volume lives on the host: emptyDir and PVCs under the sim's state, ConfigMap/Secret contents
    /// written as files, hostPath as itself.
    func volumeDirectory(_ volume: JSONValue, name: String) throws -> URL {
        var directory = podDirectory.appendingPathComponent("volumes/\(name)")
        if let hostPath = volume.value(at: ["hostPath", "path"])?.stringValue { return URL(fileURLWithPath: hostPath) }
        if let claim = volume.value(at: ["persistentVolumeClaim", "claimName"])?.stringValue {
            // A claim outlives its pods: one directory per claim beside the pods' directories.
            directory = podDirectory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("claims/\(namespace)_\(claim)")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        if let configMap = volume["configMap"] {
            try writeKeys(resource: "configmaps", name: configMap["name"]?.stringValue ?? "", optional: configMap["optional"] == .bool(true), into: directory)
        } else if let secret = volume["secret"] {
            try writeKeys(resource: "secrets", name: secret["secretName"]?.stringValue ?? "", optional: secret["optional"] == .bool(true), into: directory)
        }
        return directory
    }

    private func writeKeys(resource: String, name: String, optional: Bool, into directory: URL) throws {
        let type = ResourceCatalog.find(group: "", version: "v1", plural: resource)!
        guard let object = try? store.get(type, namespace: namespace, name: name) else {
            if optional { return }
            throw ContainerConfigError(reason: "CreateContainerConfigError", message: "\(type.singular) \"\(name)\" not found")
        }
        for (key, value) in Self.data(of: object) {
            let file = directory.appendingPathComponent(key)
            FileManager.default.createFile(atPath: file.path, contents: Data(value.utf8), attributes: [.posixPermissions: 0o600])
        }
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
