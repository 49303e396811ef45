import Foundation

/// JSON text that `JSONValue.parse(json:)` refuses, worded as Go's `encoding/json` words it (the API server's
/// decoder), with the byte offset where it went wrong.
public struct JSONSyntaxError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var offset: Int

    public var description: String { message }
}

extension JSONValue {
    /// Deeper nesting is refused instead of recursing on: the parser runs on cooperative threads with small stacks.
    /// `JSONDecoder` stops at the same depth.
    public static let maximumDepth = 512

    /// Parses JSON bytes into a tree.
    ///
    /// Written by hand because `JSONDecoder` through `init(from:)` tries each case in turn and every miss builds a
    /// `DecodingError` with its coding path: listing 500 pods (11 KB each) took ~1 s of CPU that way, about half of it
    /// in error paths (perf, a 500-node `kverify daemonset`). Accepts what Go's `encoding/json` accepts (a scalar at
    /// top level too); invalid UTF-8 and lone surrogates become U+FFFD as there (one per maximal invalid sequence,
    /// where Go writes one per byte), and a repeated key keeps its last value.
    public static func parse(json data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { try parse(json: $0) }
    }

    public static func parse(json bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse(json: $0) }
    }

    public static func parse(json bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        var parser = JSONTreeParser(bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw parser.error("invalid character \(parser.quotedCurrent) after top-level value")
        }
        return value
    }
}

/// Recursive descent over the bytes, building `JSONValue`s directly.
private struct JSONTreeParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(message: message, offset: index)
    }

    var atEnd: Bool { index >= bytes.count }

    /// The current byte as Go's `quoteChar` quotes it in its messages: `strconv.Quote` of the byte taken as a code
    /// point, between single quotes.
    var quotedCurrent: String {
        guard !atEnd else { return "EOF" }
        let byte = bytes[index]
        func hex(_ value: UInt8, digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - text.count)) + text
        }
        let inner: String = switch byte {
        case UInt8(ascii: "'"): "\\'"
        case UInt8(ascii: "\\"): "\\\\"
        case 0x07: "\\a"
        case 0x08: "\\b"
        case 0x0C: "\\f"
        case 0x0A: "\\n"
        case 0x0D: "\\r"
        case 0x09: "\\t"
        case 0x0B: "\\v"
        case 0x00..<0x20, 0x7F: "\\x" + hex(byte, digits: 2)
        // Latin-1 code points: C1 controls, NBSP and the soft hyphen are not printable to Go.
        case 0x80..<0xA1, 0xAD: "\\u00" + hex(byte, digits: 2)
        default: String(Character(Unicode.Scalar(byte)))
        }
        return "'" + inner + "'"
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    func unexpected(_ context: String) -> JSONSyntaxError {
        atEnd ? error("unexpected end of JSON input") : error("invalid character \(quotedCurrent) \(context)")
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard !atEnd else { throw error("unexpected end of JSON input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw unexpected("looking for beginning of value")
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let text = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for expected in text {
            guard !atEnd else { throw error("unexpected end of JSON input") }
            guard bytes[index] == expected else { throw unexpected("in literal \(word) (expecting '\(Character(Unicode.Scalar(expected)))')") }
            index += 1
        }
    }

    mutating func object(depth: Int) throws -> JSONValue {
        guard depth <= JSONValue.maximumDepth else { throw error("exceeded max depth") }
        index += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if !atEnd, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard !atEnd, bytes[index] == UInt8(ascii: "\"") else { throw unexpected("looking for beginning of object key string") }
            let key = try string()
            skipWhitespace()
            guard !atEnd, bytes[index] == UInt8(ascii: ":") else { throw unexpected("after object key") }
            index += 1
            skipWhitespace()
            members[key] = try value(depth: depth)
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of JSON input") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw unexpected("after object key:value pair")
            }
        }
    }

    mutating func array(depth: Int) throws -> JSONValue {
        guard depth <= JSONValue.maximumDepth else { throw error("exceeded max depth") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if !atEnd, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth))
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of JSON input") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw unexpected("after array element")
            }
        }
    }

    /// A string starting at the opening quote. Runs without escapes are taken as they are.
    mutating func string() throws -> String {
        index += 1
        let start = index
        // Fast path: no escape before the closing quote.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw error("invalid character \(quotedCurrent) in string literal") }
            index += 1
        }
        guard !atEnd else { throw error("unexpected end of JSON input") }
        var scalars = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard !atEnd else { throw error("unexpected end of JSON input") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: scalars, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard !atEnd else { throw error("unexpected end of JSON input") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escape)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate pairs with a following \uDC00–\uDFFF; alone it is U+FFFD, as in Go.
                        let save = index
                        if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                            index += 2
                            let low = try hex4()
                            if (0xDC00..<0xE000).contains(low) {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                index = save
                                scalar = 0xFFFD
                            }
                        } else {
                            scalar = 0xFFFD
                        }
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        scalar = 0xFFFD
                    }
                    scalars.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
                default:
                    index -= 1
                    throw error("invalid character \(quotedCurrent) in string escape code")
                }
            default:
                guard byte >= 0x20 else { throw error("invalid character \(quotedCurrent) in string literal") }
                scalars.append(byte)
                index += 1
            }
        }
    }

    mutating func hex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard !atEnd else { throw error("unexpected end of JSON input") }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid character \(quotedCurrent) in \\u hexadecimal character escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// Go's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    mutating func number() throws -> Double {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        func isDigit(_ at: Int) -> Bool { at < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) }
        guard isDigit(index) else { throw unexpected("in numeric literal") }
        var integer: UInt64 = 0
        var digits = 0
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            digits = 1
        } else {
            while isDigit(index) {
                if digits < 18 { integer = integer * 10 + UInt64(bytes[index] - UInt8(ascii: "0")) }
                digits += 1
                index += 1
            }
        }
        var simple = digits <= 15
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw unexpected("after decimal point in numeric literal") }
            while isDigit(index) { index += 1 }
            simple = false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw unexpected("in exponent of numeric literal") }
            while isDigit(index) { index += 1 }
            simple = false
        }
        // Whole numbers of up to 15 digits are exact as Doubles; anything else goes through the correctly rounded parser.
        if simple { return negative ? -Double(integer) : Double(integer) }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONSyntaxError(message: "number \(text) is out of range", offset: start)
        }
        return value
    }
}
