import Foundation
import KubeConfig
import KubeModel
import YAMLInput
import Yams

/// One object of a manifest file, with where it came from for error messages.
public struct Manifest: Sendable, Hashable {
    public var object: JSONValue
    public var file: String
    /// 0-based index of the YAML document in the file.
    public var documentIndex: Int
    /// 1-based line where the document starts.
    public var line: Int

    public var apiVersion: String { object["apiVersion"]?.stringValue ?? "" }
    public var kind: String { object["kind"]?.stringValue ?? "" }
    public var name: String { object["metadata"]?["name"]?.stringValue ?? "" }
    public var namespace: String? { object["metadata"]?["namespace"]?.stringValue }

    /// `file#2 (line 14) DaemonSet/exporter`, for messages.
    public var origin: String { "\(file) document \(documentIndex) (line \(line)) \(kind)/\(name)" }
}

/// Loads multi-document YAML manifests. Documents are pulled one at a time from the parser, so a broken
/// document is reported with file, document index and line instead of silently ending the list (the
/// `compose_all` trap); empty documents (`---` at the end) are skipped.
public enum ManifestLoader {
    public static func load(file path: String) throws -> [Manifest] {
        let bytes: [UInt8]
        do {
            bytes = try InputFile.read(path)
        } catch {
            throw KubeError(.badManifest, "manifest \(path) \(error.reason)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw KubeError(.badManifest, "manifest \(path) is not UTF-8 text")
        }
        return try load(yaml: text, file: path)
    }

    public static func load(yaml: String, file: String) throws -> [Manifest] {
        do {
            try YAMLBudget.check(yaml)
        } catch {
            throw KubeError(.badManifest, "manifest \(file) is refused: \(error)")
        }
        let parser: Parser
        do {
            parser = try Parser(yaml: yaml)
        } catch {
            throw KubeError(.badManifest, "manifest \(file) document 0: \(YAMLLocation.describe(error))")
        }
        var manifests: [Manifest] = []
        var index = 0
        while true {
            let node: Yams.Node?
            do {
                node = try parser.nextRoot()
            } catch {
                throw KubeError(.badManifest, "manifest \(file) document \(index): \(YAMLLocation.describe(error))")
            }
            guard let node else { break }
            defer { index += 1 }
            let line = node.mark?.line ?? 1
            if case .scalar = node, Resolver.default.resolveTag(of: node) == .null { continue }
            let value: JSONValue
            do {
                value = try convert(node)
            } catch let error as KubeError {
                throw KubeError(.badManifest, "manifest \(file) document \(index) (line \(line)): \(error.message)")
            }
            guard case .object = value else {
                throw KubeError(.badManifest, "manifest \(file) document \(index) (line \(line)): expected a mapping (a Kubernetes object)")
            }
            // A v1 List (what `kubectl get -o yaml|json` prints for several objects) stands for its items, as kubectl
            // applies it.
            if value["kind"]?.stringValue == "List", value["apiVersion"]?.stringValue == "v1", let items = value["items"] {
                guard case .array(let objects) = items else {
                    throw KubeError(.badManifest, "manifest \(file) document \(index) (line \(line)): a List's items must be a sequence of objects")
                }
                for (position, object) in objects.enumerated() {
                    guard case .object = object else {
                        throw KubeError(.badManifest, "manifest \(file) document \(index) (line \(line)) items[\(position)]: expected a mapping (a Kubernetes object)")
                    }
                    manifests.append(try checked(Manifest(object: object, file: file, documentIndex: index, line: line), "items[\(position)]"))
                }
                continue
            }
            manifests.append(try checked(Manifest(object: value, file: file, documentIndex: index, line: line), nil))
        }
        return manifests
    }

    /// `manifest`, or an error naming the first of apiVersion, kind and metadata.name it lacks.
    private static func checked(_ manifest: Manifest, _ item: String?) throws -> Manifest {
        for (field, present) in [("apiVersion", !manifest.apiVersion.isEmpty), ("kind", !manifest.kind.isEmpty), ("metadata.name", !manifest.name.isEmpty)]
        where !present {
            throw KubeError(.badManifest, "manifest \(manifest.file) document \(manifest.documentIndex) (line \(manifest.line))"
                + (item.map { " \($0)" } ?? "") + ": \(field) is missing")
        }
        return manifest
    }

    /// One YAML document of any shape (a configuration file inside a ConfigMap), with the manifests' budget and
    /// scalar rules; an empty document is `.null`.
    /// - Throws: `KubeError(.badManifest)` naming `file` and the position.
    public static func loadValue(yaml: String, file: String) throws -> JSONValue {
        do {
            try YAMLBudget.check(yaml)
        } catch {
            throw KubeError(.badManifest, "\(file) is refused: \(error)")
        }
        do {
            let parser = try Parser(yaml: yaml)
            guard let node = try parser.nextRoot() else { return .null }
            if case .scalar = node, Resolver.default.resolveTag(of: node) == .null { return .null }
            return try convert(node)
        } catch let error as KubeError {
            throw KubeError(.badManifest, "\(file): \(error.message)")
        } catch {
            throw KubeError(.badManifest, "\(file): \(YAMLLocation.describe(error))")
        }
    }

    /// YAML node → JSON value, resolving scalars by their YAML 1.1 core tags as Kubernetes' YAML reader does.
    static func convert(_ node: Yams.Node) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            // Resolve plain scalars (int, bool, null, float) with Yams' default rules; quoted ones stay strings.
            switch Resolver.default.resolveTag(of: node).rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return Bool.construct(from: scalar).map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return Int.construct(from: scalar).map { .number(Double($0)) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return Double.construct(from: scalar).map(JSONValue.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw KubeError(.badManifest, "line \(key.mark?.line ?? 0): mapping keys must be strings")
                }
                object[keyScalar.string] = try convert(value)
            }
            return .object(object)
        case .sequence(let sequence):
            return .array(try sequence.map(convert))
        case .alias:
            // Yams' composer replaces aliases by their anchors' nodes; a bare alias means a dangling reference.
            throw KubeError(.badManifest, "line \(node.mark?.line ?? 0): unresolved YAML alias")
        }
    }
}

extension KubeAPI {
    /// Server-side applies every manifest in order (namespace defaulted for namespaced kinds), resolving each
    /// kind through discovery. Errors name the manifest's file, document and object.
    /// - Returns: the stored objects, in order.
    @discardableResult
    public func apply(_ manifests: [Manifest], fieldManager: String = "kverify", force: Bool = false) async throws -> [Data] {
        var applied: [Data] = []
        for manifest in manifests {
            do {
                let resource = try await resource(apiVersion: manifest.apiVersion, kind: manifest.kind)
                var object = manifest.object
                if resource.namespaced, manifest.namespace == nil, case .object(var fields) = object,
                    case .object(var metadata)? = fields["metadata"]
                {
                    metadata["namespace"] = .string(defaultNamespace)
                    fields["metadata"] = .object(metadata)
                    object = .object(fields)
                }
                applied.append(try await apply(object, resource: resource, fieldManager: fieldManager, force: force))
            } catch let error as KubeError {
                throw KubeError(error.code, "applying \(manifest.origin): \(error.message)", status: error.status)
            }
        }
        return applied
    }
}
