/// A syntax check and member finder for JSON text that builds no values: the watch decoder uses it to split an
/// event line into its `type` and the bytes of its `object` without parsing the object into a tree and encoding it
/// again (the consumer decodes those bytes once, into its typed model).
struct JSONScan {
    private let bytes: UnsafeRawBufferPointer
    private var index: Int

    private init(_ bytes: UnsafeRawBufferPointer, at index: Int) {
        self.bytes = bytes
        self.index = index
    }

    /// The members of the object that `bytes` holds (whitespace around it allowed): each key with the byte range
    /// of its value. Nil when `bytes` is not exactly one syntactically valid JSON object, or a key has escapes.
    static func members(_ bytes: UnsafeRawBufferPointer) -> [(key: String, value: Range<Int>)]? {
        var scan = JSONScan(bytes, at: 0)
        guard let members = scan.object(collecting: true) else { return nil }
        scan.skipWhitespace()
        return scan.index == bytes.count ? members : nil
    }

    /// The byte ranges of the elements of the array that `bytes` holds; nil when it is not exactly one valid JSON array.
    static func elements(_ bytes: UnsafeRawBufferPointer) -> [Range<Int>]? {
        var scan = JSONScan(bytes, at: 0)
        var elements: [Range<Int>] = []
        scan.skipWhitespace()
        guard scan.consume(UInt8(ascii: "[")) else { return nil }
        scan.skipWhitespace()
        if !scan.consume(UInt8(ascii: "]")) {
            while true {
                scan.skipWhitespace()
                let start = scan.index
                guard scan.value() else { return nil }
                elements.append(start..<scan.index)
                scan.skipWhitespace()
                if scan.consume(UInt8(ascii: ",")) { continue }
                guard scan.consume(UInt8(ascii: "]")) else { return nil }
                break
            }
        }
        scan.skipWhitespace()
        return scan.index == bytes.count ? elements : nil
    }

    /// The value of a string at `range` (as `members` reported it), when it has no escapes.
    static func plainString(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String? {
        guard range.count >= 2, bytes[range.lowerBound] == quote, bytes[range.upperBound - 1] == quote else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        guard !inner.contains(backslash) else { return nil }
        return String(decoding: inner, as: UTF8.self)
    }

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    private mutating func skipWhitespace() {
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            index += 1
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Skips one value; false when it is not valid JSON.
    private mutating func value() -> Bool {
        skipWhitespace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "{"): return object(collecting: false) != nil
        case UInt8(ascii: "["): return array()
        case Self.quote: return string()
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    private mutating func object(collecting: Bool) -> [(key: String, value: Range<Int>)]? {
        skipWhitespace()
        guard consume(UInt8(ascii: "{")) else { return nil }
        var members: [(key: String, value: Range<Int>)] = []
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return members }
        while true {
            skipWhitespace()
            let keyStart = index
            guard string() else { return nil }
            let keyRange = keyStart..<index
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { return nil }
            skipWhitespace()
            let valueStart = index
            guard value() else { return nil }
            if collecting {
                guard let key = Self.plainString(bytes, keyRange) else { return nil }
                members.append((key, valueStart..<index))
            }
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "}")) ? members : nil
        }
    }

    private mutating func array() -> Bool {
        guard consume(UInt8(ascii: "[")) else { return false }
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return true }
        while true {
            guard value() else { return false }
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "]"))
        }
    }

    private mutating func string() -> Bool {
        guard consume(Self.quote) else { return false }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case Self.quote: return true
            case Self.backslash:
                guard index < bytes.count else { return false }
                let escaped = bytes[index]
                index += 1
                if escaped == UInt8(ascii: "u") {
                    guard index + 4 <= bytes.count,
                          bytes[index..<(index + 4)].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) })
                    else { return false }
                    index += 4
                } else if !"\"\\/bfnrt".utf8.contains(escaped) {
                    return false
                }
            case 0..<0x20: return false
            default: continue
            }
        }
        return false
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        index += count
        return true
    }

    /// `-? int frac? exp?`, as RFC 8259 spells it.
    private mutating func number() -> Bool {
        func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            return index - start
        }
        _ = consume(UInt8(ascii: "-"))
        guard index < bytes.count else { return false }
        if bytes[index] == 0x30 { index += 1 } else if digits() == 0 { return false }
        if consume(UInt8(ascii: ".")), digits() == 0 { return false }
        if consume(UInt8(ascii: "e")) || consume(UInt8(ascii: "E")) {
            if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
            if digits() == 0 { return false }
        }
        return true
    }
}
