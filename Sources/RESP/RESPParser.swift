/// A reply stream that is not valid RESP: where it broke (byte offset from the start of the stream) and how.
public struct RESPProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Offset of the offending byte, counted from the first byte the parser was given.
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "RESP protocol error at byte \(offset): \(message)" }
}

/// An incremental RESP2/RESP3 reply parser: feed it bytes as they arrive with `append`, take complete replies
/// with `next()`. It is a pure state machine (no I/O) that never re-reads a byte it has already consumed, so a
/// reply split across any number of reads costs the same as one that arrives whole.
///
/// Every length and count is bounded by `Limits`, so garbage cannot make it allocate without bound or wait for
/// a line that never ends.
public struct RESPParser: Sendable {
    /// Upper bounds on what one reply may claim; exceeding one is a protocol error, not an allocation.
    public struct Limits: Sendable {
        /// Largest bulk string accepted (Redis's own proto-max-bulk-len default is 512 MB).
        public var maxBulkLength: Int
        /// Largest element count of one array, set or map.
        public var maxAggregateCount: Int
        /// Deepest nesting of aggregates.
        public var maxDepth: Int
        /// Longest header or simple line (type byte to CRLF).
        public var maxLineLength: Int

        public init(
            maxBulkLength: Int = 512 * 1024 * 1024,
            maxAggregateCount: Int = 1 << 24,
            maxDepth: Int = 64,
            maxLineLength: Int = 64 * 1024
        ) {
            self.maxBulkLength = maxBulkLength
            self.maxAggregateCount = maxAggregateCount
            self.maxDepth = maxDepth
            self.maxLineLength = maxLineLength
        }
    }

    private enum BulkKind { case string, blobError, verbatim }
    private enum AggregateKind { case array, map, attribute }

    private enum State {
        /// Waiting for a type byte and the rest of its line.
        case header
        /// Waiting for `length` payload bytes plus CRLF.
        case bulk(BulkKind, length: Int, startOffset: Int)
    }

    /// An aggregate whose elements are still arriving.
    private struct Open {
        var kind: AggregateKind
        var remaining: Int
        var elements: [RESPValue]
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    /// First unconsumed byte in `buffer`.
    private var position = 0
    /// Where the CRLF search resumes, so a long line arriving in pieces is scanned once.
    private var scanFrom = 0
    /// Stream offset of `buffer[0]`, for error messages.
    private var discarded = 0
    private var state = State.header
    private var stack: [Open] = []

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// True while a reply has started but is not complete (a connection that closes now cut a frame).
    public var isMidReply: Bool {
        if position < buffer.count || !stack.isEmpty { return true }
        if case .bulk = state { return true }
        return false
    }

    /// Bytes received but not yet consumed by a complete reply.
    public var bufferedByteCount: Int { buffer.count - position }

    /// Adds bytes received from the server.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Adds bytes received from the server.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, or nil when more bytes are needed.
    /// - Throws: `RESPProtocolError` naming the byte offset, what was expected and what was seen. After a throw
    ///   the stream position is unknown; discard the parser (and the connection).
    public mutating func next() throws(RESPProtocolError) -> RESPValue? {
        while true {
            let value: RESPValue
            switch state {
            case .header:
                guard let parsed = try parseHeader() else { return nil }
                guard let scalar = parsed else { continue }  // an aggregate or bulk header: keep reading
                value = scalar
            case .bulk(let kind, let length, let startOffset):
                guard buffer.count - position >= length + 2 else { return nil }
                guard buffer[position + length] == 13, buffer[position + length + 1] == 10 else {
                    throw RESPProtocolError(
                        offset: discarded + position + length,
                        message: "bulk reply of \(length) bytes (header at byte \(startOffset)) is not followed by CRLF; "
                            + "saw \(preview(from: position + length))")
                }
                let payload = Array(buffer[position..<(position + length)])
                position += length + 2
                scanFrom = position
                state = .header
                switch kind {
                case .string:
                    value = .bulkString(payload)
                case .blobError:
                    value = .error(String(decoding: payload, as: UTF8.self))
                case .verbatim:
                    // `=15\r\ntxt:Some string`: a three-letter format, a colon, then the text.
                    guard payload.count >= 4, payload[3] == UInt8(ascii: ":") else {
                        throw RESPProtocolError(
                            offset: startOffset,
                            message: "verbatim string must start with a 3-letter format and ':', saw "
                                + RESPValue.preview(String(decoding: payload.prefix(8), as: UTF8.self)))
                    }
                    value = .bulkString(Array(payload[4...]))
                }
            }
            if let complete = attach(value) { return complete }
        }
    }

    // MARK: - Header lines

    /// Parses one header line. Returns nil when the line is incomplete, `.some(nil)` when it opened a bulk
    /// or an aggregate, `.some(value)` for a complete scalar.
    private mutating func parseHeader() throws(RESPProtocolError) -> RESPValue?? {
        guard position < buffer.count else { return nil }
        let type = buffer[position]
        let headerOffset = discarded + position
        // Reject a wrong first byte at once: a non-RESP server (HTTP, TLS) may send a partial line and wait.
        guard Self.isTypeByte(type) else {
            throw RESPProtocolError(
                offset: headerOffset,
                message: "expected a RESP type byte (one of + - : $ * _ # , ( ! = % ~ > |), saw \(preview(from: position))"
                    + (headerOffset == 0 ? " — is this a Redis server?" : ""))
        }
        guard let lineEnd = try findCRLF() else {
            // A CR already read belongs to the line ending, not to the line: the same line must pass or fail the
            // limit however it is split across reads.
            var length = buffer.count - position
            if buffer[buffer.count - 1] == 13 { length -= 1 }
            if length > limits.maxLineLength { throw lineTooLong(type, at: headerOffset) }
            return nil
        }
        if lineEnd - position > limits.maxLineLength { throw lineTooLong(type, at: headerOffset) }
        let line = buffer[(position + 1)..<lineEnd]
        position = lineEnd + 2
        scanFrom = position

        switch type {
        case UInt8(ascii: "+"):
            return .some(.simpleString(String(decoding: line, as: UTF8.self)))
        case UInt8(ascii: "-"):
            return .some(.error(String(decoding: line, as: UTF8.self)))
        case UInt8(ascii: ":"):
            return .some(.integer(try integer(line, kind: "integer reply", at: headerOffset)))
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let length = try integer(line, kind: "bulk length", at: headerOffset)
            if length == -1 && type == UInt8(ascii: "$") { return .some(.null) }
            guard length >= 0, length <= limits.maxBulkLength else {
                throw RESPProtocolError(
                    offset: headerOffset,
                    message: "bulk length \(length) is outside 0…\(limits.maxBulkLength)")
            }
            let kind: BulkKind = type == UInt8(ascii: "$") ? .string : type == UInt8(ascii: "!") ? .blobError : .verbatim
            state = .bulk(kind, length: Int(length), startOffset: headerOffset)
            return .some(nil)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            let count = try integer(line, kind: "aggregate length", at: headerOffset)
            if count == -1 && type == UInt8(ascii: "*") { return .some(.null) }
            guard count >= 0, count <= limits.maxAggregateCount else {
                throw RESPProtocolError(
                    offset: headerOffset,
                    message: "aggregate length \(count) is outside 0…\(limits.maxAggregateCount)")
            }
            let kind: AggregateKind =
                switch type {
                case UInt8(ascii: "%"): .map
                case UInt8(ascii: "|"): .attribute
                default: .array
                }
            if count == 0 {
                switch kind {
                case .array: return .some(.array([]))
                case .map: return .some(.map([]))
                case .attribute: return .some(nil)  // an empty attribute annotates nothing; read on
                }
            }
            guard stack.count < limits.maxDepth else {
                throw RESPProtocolError(offset: headerOffset, message: "aggregates nested deeper than \(limits.maxDepth)")
            }
            let elements = Int(count) * (kind == .array ? 1 : 2)
            var open = Open(kind: kind, remaining: elements, elements: [])
            open.elements.reserveCapacity(min(elements, 4096))
            stack.append(open)
            return .some(nil)
        case UInt8(ascii: "_"):
            guard line.isEmpty else {
                throw RESPProtocolError(offset: headerOffset, message: "null '_' must be followed by CRLF, saw \(text(line))")
            }
            return .some(.null)
        case UInt8(ascii: "#"):
            if line.elementsEqual([UInt8(ascii: "t")]) { return .some(.boolean(true)) }
            if line.elementsEqual([UInt8(ascii: "f")]) { return .some(.boolean(false)) }
            throw RESPProtocolError(offset: headerOffset, message: "boolean must be 't' or 'f', saw \(text(line))")
        case UInt8(ascii: ","):
            let spelled = String(decoding: line, as: UTF8.self)
            let value: Double? =
                switch spelled {
                case "inf": .infinity
                case "-inf": -.infinity
                case "nan", "-nan": .nan
                default: Double(spelled)
                }
            guard let value else {
                throw RESPProtocolError(offset: headerOffset, message: "double reply \(text(line)) is not a number")
            }
            return .some(.double(value))
        case UInt8(ascii: "("):
            let digits = line.first == UInt8(ascii: "-") ? line.dropFirst() : line[...]
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw RESPProtocolError(offset: headerOffset, message: "big number \(text(line)) is not an integer")
            }
            return .some(.bigNumber(String(decoding: line, as: UTF8.self)))
        default:
            // Unreachable: `typeBytes` was checked above. Kept as an error rather than a trap.
            throw RESPProtocolError(offset: headerOffset, message: "unsupported type byte \(preview(from: headerOffset - discarded))")
        }
    }

    private func lineTooLong(_ type: UInt8, at offset: Int) -> RESPProtocolError {
        RESPProtocolError(
            offset: offset,
            message: "a '\(Character(UnicodeScalar(type)))' line is longer than \(limits.maxLineLength) bytes "
                + "(no CRLF within \(limits.maxLineLength) bytes)")
    }

    /// Whether `byte` starts a RESP2/RESP3 value: one of `+-:$*_#,(!=%~>|`, as two 64-bit masks (this runs for
    /// every reply, where a `Set` lookup costs a hash).
    @inline(__always)
    private static func isTypeByte(_ byte: UInt8) -> Bool {
        byte < 64 ? (lowTypeBytes >> UInt64(byte)) & 1 != 0 : byte < 128 && (highTypeBytes >> UInt64(byte - 64)) & 1 != 0
    }

    private static let lowTypeBytes: UInt64 = "+-:$*_#,(!=%~>|".utf8.reduce(0) { $1 < 64 ? $0 | 1 << UInt64($1) : $0 }
    private static let highTypeBytes: UInt64 = "+-:$*_#,(!=%~>|".utf8.reduce(0) { $1 >= 64 ? $0 | 1 << UInt64($1 - 64) : $0 }

    /// Index of the CR of the next CRLF at or after `position + 1`, or nil if the line is incomplete.
    private mutating func findCRLF() throws(RESPProtocolError) -> Int? {
        var index = max(scanFrom, position + 1)
        let end = buffer.count
        let found: Int? = buffer.withUnsafeBufferPointer { bytes in
            while index < end {
                if bytes[index] == 13 { return index }
                if bytes[index] == 10 { return -index - 1 }  // a bare LF: reported below
                index += 1
            }
            return nil
        }
        guard let found else {
            scanFrom = end
            return nil
        }
        if found < 0 {
            let at = -found - 1
            throw RESPProtocolError(offset: discarded + at, message: "line ends with LF without CR")
        }
        guard found + 1 < end else {
            scanFrom = found  // the LF has not arrived yet
            return nil
        }
        guard buffer[found + 1] == 10 else {
            throw RESPProtocolError(offset: discarded + found + 1, message: "expected LF after CR, saw \(preview(from: found + 1))")
        }
        return found
    }

    /// A decimal integer as Redis writes it: optional sign, digits, no spaces, fits in Int64.
    private func integer(_ line: ArraySlice<UInt8>, kind: String, at offset: Int) throws(RESPProtocolError) -> Int64 {
        var digits = line[...]
        var negative = false
        if let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 19 else {
            throw RESPProtocolError(offset: offset, message: "\(kind) \(text(line)) is not a 64-bit integer")
        }
        var value: Int64 = 0
        for digit in digits {
            guard digit >= 48, digit <= 57 else {
                throw RESPProtocolError(offset: offset, message: "\(kind) \(text(line)) is not a 64-bit integer")
            }
            // Accumulated with its sign, so Int64.min (whose magnitude Int64 cannot hold) is read too.
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = negative ? times.subtractingReportingOverflow(Int64(digit - 48))
                                            : times.addingReportingOverflow(Int64(digit - 48))
            guard !overflow1, !overflow2 else {
                throw RESPProtocolError(offset: offset, message: "\(kind) \(text(line)) overflows a 64-bit integer")
            }
            value = sum
        }
        return value
    }

    // MARK: - Aggregates

    /// Adds a finished value to the innermost open aggregate; returns the top-level reply once complete.
    private mutating func attach(_ value: RESPValue) -> RESPValue? {
        var value = value
        while var open = stack.popLast() {
            open.elements.append(value)
            open.remaining -= 1
            if open.remaining > 0 {
                stack.append(open)
                return nil
            }
            switch open.kind {
            case .array:
                value = .array(open.elements)
            case .map:
                value = .map(stride(from: 0, to: open.elements.count, by: 2).map {
                    RESPPair(key: open.elements[$0], value: open.elements[$0 + 1])
                })
            case .attribute:
                // Attributes annotate the reply that follows; kverify needs none of them. Dropping it here
                // leaves the enclosing aggregate's count untouched, as the protocol requires.
                return nil
            }
        }
        return value
    }

    // MARK: - Buffer and messages

    private mutating func compact() {
        guard position > 0, position == buffer.count || position >= 64 * 1024 else { return }
        buffer.removeFirst(position)
        discarded += position
        scanFrom -= position
        position = 0
    }

    private func preview(from index: Int) -> String {
        guard index < buffer.count else { return "end of data" }
        return text(buffer[index..<min(buffer.count, index + 24)])
    }

    private func text(_ bytes: ArraySlice<UInt8>) -> String {
        var out = "\""
        for byte in bytes.prefix(40) {
            switch byte {
            case 13: out += "\\r"
            case 10: out += "\\n"
            case 34: out += "\\\""
            case 32...126: out.unicodeScalars.append(UnicodeScalar(byte))
            default: out += "\\x" + String(byte, radix: 16, uppercase: false).leftPadded(to: 2)
            }
        }
        return out + (bytes.count > 40 ? "…\"" : "\"")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
