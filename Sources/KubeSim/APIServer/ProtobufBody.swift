import Foundation
import SimFaults
import SimStore
import KubeModel

/// Decodes the few protobuf request bodies kubectl sends through its typed clients (`kubectl create namespace`,
/// `create configmap`, `create secret`): the `k8s\0` envelope around `runtime.Unknown`, then Namespace, ConfigMap
/// or Secret with the ObjectMeta fields such a command sets; the workload kinds, Pod, Service, the RBAC kinds and
/// DeleteOptions through the field tables of `ProtobufSchema` (`kubectl create deployment`, `create role`, `helm
/// uninstall`). Other kinds get 415 (kubectl
/// does not fall back to JSON then); the sim answers in JSON, which those clients also accept.
package enum ProtobufBody {
    static let magic: [UInt8] = [0x6B, 0x38, 0x73, 0x00]

    static func decode(_ data: Data) throws -> JSONValue {
        let bytes = [UInt8](data)
        guard bytes.starts(with: magic) else { throw failure("missing the k8s protobuf envelope") }
        let unknown = try fields(bytes[4...])
        guard let typeMeta = unknown[1]?.first?.bytes, let raw = unknown[2]?.first?.bytes else {
            throw failure("the envelope lacks its type or object")
        }
        let meta = try fields(typeMeta)
        let apiVersion = meta[1]?.first?.string ?? "", kind = meta[2]?.first?.string ?? ""
        let object = try fields(raw)
        var result: JSONValue = ["apiVersion": .string(apiVersion), "kind": .string(kind)]
        if let metadata = object[1]?.first?.bytes { result.set(["metadata"], to: try objectMeta(metadata)) }
        switch kind {
        case "Namespace":
            if let spec = object[2]?.first?.bytes {
                let finalizers = try fields(spec)[1]?.compactMap(\.string) ?? []
                if !finalizers.isEmpty { result.set(["spec", "finalizers"], to: .array(finalizers.map { .string($0) })) }
            }
        case "ConfigMap":
            if let data = try map(object[2]) { result.set(["data"], to: data) }
            if let binary = try map(object[3], base64: true) { result.set(["binaryData"], to: binary) }
            if let immutable = object[4]?.first?.varint { result.set(["immutable"], to: .bool(immutable != 0)) }
        case "Secret":
            if let data = try map(object[2], base64: true) { result.set(["data"], to: data) }
            if let type = object[3]?.first?.string { result.set(["type"], to: .string(type)) }
            if let data = try map(object[4]) { result.set(["stringData"], to: data) }
            if let immutable = object[5]?.first?.varint { result.set(["immutable"], to: .bool(immutable != 0)) }
        default:
            guard let schema = ProtobufSchema.topLevel[kind] else {
                throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (the sim decodes protobuf only for \(ProtobufSchema.decodedKinds), not \(kind))")
            }
            guard case .object(let decoded) = try ProtobufSchema.decode(raw, as: schema) else { break }
            for (key, value) in decoded where key != "metadata" { result.set([key], to: value) }
        }
        return result
    }

    static func objectMeta(_ bytes: ArraySlice<UInt8>) throws -> JSONValue {
        let meta = try fields(bytes)
        var result: JSONValue = [:]
        for (number, name) in [(1, "name"), (2, "generateName"), (3, "namespace")] {
            if let value = meta[number]?.first?.string, !value.isEmpty { result.set([name], to: .string(value)) }
        }
        if let version = meta[6]?.first?.string, !version.isEmpty { result.set(["resourceVersion"], to: .string(version)) }
        if let labels = try map(meta[11]) { result.set(["labels"], to: labels) }
        if let annotations = try map(meta[12]) { result.set(["annotations"], to: annotations) }
        let finalizers = meta[14]?.compactMap(\.string) ?? []
        if !finalizers.isEmpty { result.set(["finalizers"], to: .array(finalizers.map { .string($0) })) }
        return result
    }

    enum Field {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed

        var bytes: ArraySlice<UInt8>? { if case .bytes(let value) = self { return value } else { return nil } }
        var string: String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
        var varint: UInt64? { if case .varint(let value) = self { return value } else { return nil } }
    }

    static func map(_ entries: [Field]?, base64: Bool = false) throws -> JSONValue? {
        guard let entries, !entries.isEmpty else { return nil }
        var object: [String: JSONValue] = [:]
        for entry in entries {
            guard let bytes = entry.bytes else { continue }
            let pair = try fields(bytes)
            let key = pair[1]?.first?.string ?? ""
            let value = pair[2]?.first?.bytes ?? []
            object[key] = .string(base64 ? Data(value).base64EncodedString() : String(decoding: value, as: UTF8.self))
        }
        return .object(object)
    }

    static func fields(_ bytes: ArraySlice<UInt8>) throws -> [Int: [Field]] {
        var result: [Int: [Field]] = [:]
        var index = bytes.startIndex
        func varint() throws -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard index < bytes.endIndex, shift < 64 else { throw failure("truncated varint") }
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while index < bytes.endIndex {
            let key = try varint()
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: result[number, default: []].append(.varint(try varint()))
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard index + width <= bytes.endIndex else { throw failure("truncated fixed field") }
                index += width
                result[number, default: []].append(.fixed)
            case 2:
                let length = Int(clamping: try varint())
                guard length <= bytes.endIndex - index else { throw failure("field \(number) runs past the end") }
                result[number, default: []].append(.bytes(bytes[index..<(index + length)]))
                index += length
            default:
                throw failure("unsupported wire type \(key & 7)")
            }
        }
        return result
    }

    static func failure(_ why: String) -> APIError {
        .badRequest("the protobuf body cannot be decoded: \(why)")
    }
}
