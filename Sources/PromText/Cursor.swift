/// Reading position and byte classes shared by both line grammars.

/// A read position inside one line (no `\n`). Offsets are 0-based; errors report 1-based columns.
struct Cursor {
    let p: UnsafePointer<UInt8>
    let n: Int
    let line: Int
    var i = 0

    @inline(__always) var atEnd: Bool { i >= n }
    @inline(__always) var byte: UInt8 { p[i] }

    /// Advances over bytes for which `accept` holds, using locals so the loop stays in registers.
    @inline(__always) mutating func skip(while accept: (UInt8) -> Bool) {
        var j = i
        while j < n && accept(p[j]) { j += 1 }
        i = j
    }

    @inline(__always) mutating func skipBlanks() {
        while i < n && (p[i] == UInt8(ascii: " ") || p[i] == UInt8(ascii: "\t")) { i += 1 }
    }

    func error(_ reason: String, at offset: Int? = nil) -> ParseError {
        ParseError(line: line, column: (offset ?? i) + 1, reason: reason)
    }

    /// The byte at the cursor, quoted for messages, or "end of line".
    var found: String { atEnd ? "end of line" : describeByte(byte) }

    func text(_ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: p + from, count: max(0, to - from)), as: UTF8.self)
    }
}

func describeByte(_ byte: UInt8) -> String {
    switch byte {
    case 0x20: return "' '"
    case 0x09: return "'\\t'"
    case 0x0D: return "'\\r'"
    case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
    default: return "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }
}

/// Byte classes, one bit each in a 256-entry table (built once; never freed, like any global constant).
enum ByteClass {
    static let labelNameStart: UInt8 = 1  // [a-zA-Z_]
    static let labelName: UInt8 = 2       // [a-zA-Z0-9_]
    static let metricNameStart: UInt8 = 4 // [a-zA-Z_:]
    static let metricName: UInt8 = 8      // [a-zA-Z0-9_:]

    nonisolated(unsafe) static let table: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        table.initialize(repeating: 0, count: 256)
        for b in 0..<256 {
            let byte = UInt8(b)
            let letter = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
            let digit = byte >= 0x30 && byte <= 0x39
            let colon = byte == 0x3A
            var bits: UInt8 = 0
            if letter { bits |= labelNameStart | labelName | metricNameStart | metricName }
            if digit { bits |= labelName | metricName }
            if colon { bits |= metricNameStart | metricName }
            table[b] = bits
        }
        return UnsafePointer(table)
    }()
}

@inline(__always) func isLetterOrUnderscore(_ b: UInt8) -> Bool { ByteClass.table[Int(b)] & ByteClass.labelNameStart != 0 }
@inline(__always) func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }
@inline(__always) func isMetricNameStart(_ b: UInt8) -> Bool { ByteClass.table[Int(b)] & ByteClass.metricNameStart != 0 }
@inline(__always) func isMetricNameChar(_ b: UInt8) -> Bool { ByteClass.table[Int(b)] & ByteClass.metricName != 0 }
@inline(__always) func isLabelNameChar(_ b: UInt8) -> Bool { ByteClass.table[Int(b)] & ByteClass.labelName != 0 }

extension Cursor {
    /// Advances over bytes whose class has `bit` set (table loaded once, index kept in a register).
    @inline(__always) mutating func skip(class bit: UInt8) {
        let table = ByteClass.table
        var j = i
        while j < n && table[Int(p[j])] & bit != 0 { j += 1 }
        i = j
    }

    /// Advances to the next '"' or '\\' (or the end), eight bytes at a time where the line allows.
    @inline(__always) mutating func skipToQuoteOrBackslash() {
        var j = i
        let raw = UnsafeRawPointer(p)
        while j + 8 <= n {
            let word = raw.loadUnaligned(fromByteOffset: j, as: UInt64.self)
            let quote = word ^ 0x2222_2222_2222_2222
            let backslash = word ^ 0x5C5C_5C5C_5C5C_5C5C
            let zero = ((quote &- 0x0101_0101_0101_0101) & ~quote) | ((backslash &- 0x0101_0101_0101_0101) & ~backslash)
            let found = zero & 0x8080_8080_8080_8080
            if found != 0 {
                j += found.trailingZeroBitCount >> 3
                i = j
                return
            }
            j += 8
        }
        while j < n && p[j] != UInt8(ascii: "\"") && p[j] != UInt8(ascii: "\\") { j += 1 }
        i = j
    }
}
