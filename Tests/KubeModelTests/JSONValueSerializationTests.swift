import Foundation
import KubeModel
import Testing

/// `JSONValue.jsonData()` writes JSON itself; it must stay byte for byte what Foundation's `JSONEncoder` writes with
/// `[.sortedKeys, .withoutEscapingSlashes]` (what it replaced), so no client sees a different sim.
@Suite("JSONValue serialization")
struct JSONValueSerializationTests {
    static func reference(_ value: JSONValue) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// SplitMix64: a seeded generator, so a failure names a case that can be replayed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let pieces = ["a", "B", "z", "_", "-", ".", "/", "0", "9", "é", "ß", "😀", "\"", "\\", "\n", "\r", "\t",
                         "\u{8}", "\u{c}", "\u{0}", "\u{1}", "\u{1f}", "\u{7f}", " ", "apiVersion", "kind", "metadata"]
    static let numbers: [Double] = [0, -0.0, 1, -1, 2, 0.5, 1.5, 0.1, -2.75, 1e-7, 3e-5, 123456789.123, 1e14, 999_999_999_999_999,
                                    1e15, -1e15, 2.5e15, 9_007_199_254_740_993, 1e20, -1e300, 5e-324, .greatestFiniteMagnitude]

    static func string(_ random: inout Seeded) -> String {
        (0..<Int.random(in: 0...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func value(_ random: inout Seeded, depth: Int) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &random) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .number(Bool.random(using: &random) ? numbers.randomElement(using: &random)! : Double.random(in: -1e6...1e6, using: &random))
        case 3: return .string(string(&random))
        case 4: return .array((0..<Int.random(in: 0...4, using: &random)).map { _ in value(&random, depth: depth + 1) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &random) { members[string(&random)] = value(&random, depth: depth + 1) }
            return .object(members)
        }
    }

    @Test("3,000 random documents (keys and strings with escapes, Unicode, every number shape) match JSONEncoder byte for byte")
    func matchesJSONEncoder() throws {
        var random = Seeded(state: 20261202)
        for index in 0..<3000 {
            let document = Self.value(&random, depth: 0)
            let ours = try document.jsonData(), theirs = try Self.reference(document)
            #expect(ours == theirs, "document \(index): \(String(decoding: ours, as: UTF8.self)) vs \(String(decoding: theirs, as: UTF8.self))")
            if ours != theirs { return }
        }
    }

    @Test("a NaN or an infinite number is an encoding error, as with JSONEncoder")
    func nonFiniteThrows() {
        for bad in [Double.nan, .infinity, -.infinity] {
            #expect(throws: EncodingError.self) { _ = try JSONValue.array([.number(bad)]).jsonData() }
        }
    }
}
