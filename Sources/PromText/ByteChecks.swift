/// Whole-line byte checks done before the grammar: UTF-8 validity and (text mode) NUL bytes.
enum ByteChecks {
    /// The 0-based offset of the first byte that is not valid UTF-8 (or, with `rejectNUL`, a NUL), with a
    /// description; nil when the line is clean. Mostly-ASCII input is checked eight bytes at a time.
    static func firstProblem(
        _ start: UnsafePointer<UInt8>, _ length: Int, rejectNUL: Bool
    ) -> (offset: Int, reason: String)? {
        let raw = UnsafeRawPointer(start)
        var i = 0
        while i + 16 <= length {  // the common all-ASCII case, sixteen bytes per step
            let w0 = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let w1 = raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
            var bad = (w0 | w1) & 0x8080_8080_8080_8080
            if rejectNUL {
                bad |= ((w0 &- 0x0101_0101_0101_0101) & ~w0 | (w1 &- 0x0101_0101_0101_0101) & ~w1) & 0x8080_8080_8080_8080
            }
            if bad != 0 { break }
            i += 16
        }
        while i < length {
            if i + 8 <= length {
                let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let highBits = word & 0x8080_8080_8080_8080
                let zeroBytes = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
                if highBits == 0 && (!rejectNUL || zeroBytes == 0) {
                    i += 8
                    continue
                }
            }
            let byte = start[i]
            if byte < 0x80 {
                if byte == 0 && rejectNUL { return (i, "NUL byte in input (binary data?)") }
                i += 1
                continue
            }
            let sequenceLength = utf8SequenceLength(start + i, length - i)
            if sequenceLength == 0 {
                return (i, "invalid UTF-8 byte 0x\(String(byte, radix: 16, uppercase: true))")
            }
            i += sequenceLength
        }
        return nil
    }

    /// Length of the valid UTF-8 sequence at `p` (2…4), or 0 if it is invalid, truncated, overlong, a surrogate
    /// or beyond U+10FFFF.
    private static func utf8SequenceLength(_ p: UnsafePointer<UInt8>, _ available: Int) -> Int {
        let b0 = p[0]
        @inline(__always) func continuation(_ k: Int) -> Bool { k < available && p[k] & 0xC0 == 0x80 }
        switch b0 {
        case 0xC2...0xDF:
            return continuation(1) ? 2 : 0
        case 0xE0...0xEF:
            guard continuation(1), continuation(2) else { return 0 }
            if b0 == 0xE0 && p[1] < 0xA0 { return 0 }  // overlong
            if b0 == 0xED && p[1] > 0x9F { return 0 }  // surrogates
            return 3
        case 0xF0...0xF4:
            guard continuation(1), continuation(2), continuation(3) else { return 0 }
            if b0 == 0xF0 && p[1] < 0x90 { return 0 }  // overlong
            if b0 == 0xF4 && p[1] > 0x8F { return 0 }  // > U+10FFFF
            return 4
        default:
            return 0
        }
    }

    /// Unicode code points in a UTF-8 string (OpenMetrics limits exemplar label sets by code points).
    static func codePointCount(_ string: String) -> Int {
        string.utf8.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }
}
