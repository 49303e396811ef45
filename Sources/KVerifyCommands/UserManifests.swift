import Findings
import Foundation
import KubeClient
import YAMLInput

/// `-f/--filename` as kubectl reads it: files, directories (their `*.yaml`, `*.yml` and `*.json`, in name order,
/// not recursive) and `-` for standard input. Every problem is a usage error naming the path.
enum UserManifests {
    static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// `timeout` bounds reading standard input (`-f -`), as `--timeout` bounds the rest of the run.
    static func load(_ paths: [String], timeout: DurationArgument? = nil) throws -> [Manifest] {
        var manifests: [Manifest] = []
        for path in paths {
            for file in try files(path) {
                do {
                    if file == "-" {
                        manifests += try ManifestLoader.load(yaml: try readStandardInput(timeout: timeout), file: "standard input")
                    } else {
                        manifests += try ManifestLoader.load(file: file)
                    }
                } catch let error as KubeError {
                    throw KVerifyError(.usageOrInput, error.message, cause: nil)
                }
            }
        }
        guard !manifests.isEmpty else {
            throw KVerifyError(.usageOrInput, "-f \(paths.joined(separator: " -f ")): no Kubernetes objects found; give the files that hold your workloads")
        }
        return manifests
    }

    /// All of standard input, as `kubectl apply -f -` reads it (until end of file), through read(2): FileHandle traps
    /// on a read error, and `-f - < /tmp` gives EISDIR. More than the YAML budget's bytes is refused, not buffered.
    static func readStandardInput(timeout: DurationArgument? = nil) throws -> String {
        do {
            return String(decoding: try InputFile.read(descriptor: STDIN_FILENO, deadline: timeout.map { .now + $0.duration }), as: UTF8.self)
        } catch {
            let bound = timeout.map { " (--timeout \($0))" } ?? ""
            throw KVerifyError(error.timedOut ? .unreachable : .usageOrInput,
                               "-f -: standard input \(error.reason)\(bound); pipe the manifests in and end the input, or name the files with -f")
        }
    }

    /// The files one `-f` names.
    static func files(_ path: String) throws -> [String] {
        if path == "-" { return ["-"] }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw KVerifyError(.usageOrInput, "-f \(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return [path] }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw KVerifyError(.usageOrInput, "-f \(path): the directory cannot be read (\(error.localizedDescription))")
        }
        let found = entries.filter { extensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }.sorted()
        guard !found.isEmpty else {
            throw KVerifyError(.usageOrInput, "-f \(path): the directory holds no *.yaml, *.yml or *.json file")
        }
        return found.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
    }
}
