import Foundation
import KubeModel

#if canImport(Glibc)
import Glibc
#endif

/// The real server's validation of a `networking.k8s.io/v1` NetworkPolicy (`ValidateNetworkPolicySpec`): policy
/// types, every port (protocol, number or IANA name, `endPort`) and every peer (one of the selectors, or an
/// `ipBlock` alone with a valid CIDR whose `except` entries lie strictly inside it). The sim stores and serves
/// policies; it does not enforce them (README, "Not modelled").
enum NetworkPolicyValidation {
    static func causes(_ object: JSONValue) -> [APIError.Cause] {
        var causes: [APIError.Cause] = []
        let types = object.value(at: ["spec", "policyTypes"])?.arrayValue ?? []
        for (index, type) in types.enumerated() {
            let text = type.stringValue ?? ""
            if !["Ingress", "Egress"].contains(text) {
                causes.append(.unsupported("spec.policyTypes[\(index)]", value: text, supported: ["Ingress", "Egress"]))
            }
        }
        if types.count > 2 {
            causes.append(.invalid("spec.policyTypes", rendered: "[" + types.compactMap(\.stringValue).joined(separator: " ") + "]",
                                   why: "may not specify more than two policyTypes"))
        }
        for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
            for (index, rule) in (object.value(at: ["spec", direction])?.arrayValue ?? []).enumerated() {
                let path = "spec.\(direction)[\(index)]"
                for (portIndex, port) in (rule["ports"]?.arrayValue ?? []).enumerated() {
                    causes += portCauses(port, path: "\(path).ports[\(portIndex)]")
                }
                for (peerIndex, peer) in (rule[peers]?.arrayValue ?? []).enumerated() {
                    causes += peerCauses(peer, path: "\(path).\(peers)[\(peerIndex)]")
                }
            }
        }
        return causes
    }

    static func portCauses(_ port: JSONValue, path: String) -> [APIError.Cause] {
        var causes: [APIError.Cause] = []
        if let proto = port["protocol"]?.stringValue, !["TCP", "UDP", "SCTP"].contains(proto) {
            causes.append(.unsupported("\(path).protocol", value: proto, supported: ["TCP", "UDP", "SCTP"]))
        }
        let endPort = port["endPort"]?.intValue
        switch port["port"] {
        case .number(let value)?:
            let number = Int(value)
            if !(1...65535).contains(number) { causes.append(.invalid("\(path).port", value: number, why: portRange)) }
            if let endPort {
                if endPort < number { causes.append(.invalid("\(path).endPort", value: number, why: "must be greater than or equal to `port`")) }
                if !(1...65535).contains(endPort) { causes.append(.invalid("\(path).endPort", value: endPort, why: portRange)) }
            }
        case .string(let name)?:
            if let endPort { causes.append(.invalid("\(path).endPort", value: endPort, why: "may not be specified when `port` is non-numeric")) }
            causes += portNameProblems(name).map { APIError.Cause.invalid("\(path).port", value: name, why: $0) }
        default:
            if let endPort { causes.append(.invalid("\(path).endPort", value: endPort, why: "may not be specified when `port` is not specified")) }
        }
        return causes
    }

    static let portRange = "must be between 1 and 65535, inclusive"

    /// `IsValidPortName`: an IANA service name.
    static func portNameProblems(_ name: String) -> [String] {
        var problems: [String] = []
        let bytes = Array(name.utf8)
        if bytes.count > 15 { problems.append("must be no more than 15 characters") }
        if bytes.isEmpty || !bytes.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }) {
            problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
        }
        if !bytes.contains(where: { $0 >= 97 && $0 <= 122 }) { problems.append("must contain at least one letter (a-z)") }
        if name.contains("--") { problems.append("must not contain consecutive hyphens") }
        if bytes.first == 45 || bytes.last == 45 { problems.append("must not begin or end with a hyphen") }
        return problems
    }

    static func peerCauses(_ peer: JSONValue, path: String) -> [APIError.Cause] {
        let ipBlock = peer["ipBlock"]
        let count = [peer["podSelector"], peer["namespaceSelector"], ipBlock].compactMap { $0 }.count
        if count == 0 { return [.required(path, why: "must specify a peer")] }
        if count > 1, ipBlock != nil { return [.forbidden(path, why: "may not specify both ipBlock and another peer")] }
        guard let ipBlock else { return [] }
        guard let cidr = ipBlock["cidr"]?.stringValue, !cidr.isEmpty else { return [.required("\(path).ipBlock.cidr")] }
        guard let block = CIDR(cidr) else { return [.invalid("\(path).ipBlock.cidr", value: cidr, why: CIDR.invalidMessage)] }
        var causes: [APIError.Cause] = []
        for (index, item) in (ipBlock["except"]?.arrayValue ?? []).enumerated() {
            let text = item.stringValue ?? ""
            let field = "\(path).ipBlock.except[\(index)]"
            guard let except = CIDR(text) else {
                causes.append(.invalid(field, value: text, why: CIDR.invalidMessage))
                continue
            }
            if !block.strictlyContains(except) { causes.append(.invalid(field, value: text, why: "must be a strict subset of `cidr`")) }
        }
        return causes
    }
}

/// An IPv4 or IPv6 prefix, as `net.ParseCIDR` reads it.
struct CIDR {
    static let invalidMessage = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    var address: [UInt8]
    var length: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = Int(parts[1]), parts[1].allSatisfy(\.isASCII) else { return nil }
        let v6 = parts[0].contains(":")
        var buffer = [UInt8](repeating: 0, count: v6 ? 16 : 4)
        guard inet_pton(v6 ? AF_INET6 : AF_INET, String(parts[0]), &buffer) == 1, (0...(buffer.count * 8)).contains(length) else { return nil }
        address = buffer
        self.length = length
    }

    /// `other` is a longer prefix of the same family inside this one.
    func strictlyContains(_ other: CIDR) -> Bool {
        guard other.address.count == address.count, other.length > length else { return false }
        for bit in 0..<length where (address[bit / 8] >> (7 - bit % 8)) & 1 != (other.address[bit / 8] >> (7 - bit % 8)) & 1 {
            return false
        }
        return true
    }
}
