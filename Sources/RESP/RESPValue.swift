/// One reply from a Redis server: RESP2 types plus the RESP3 types that are cheap to represent.
public enum RESPValue: Sendable, Hashable {
    /// `+OK`: a short status text.
    case simpleString(String)
    /// `-ERR …` (and RESP3 `!` blob errors): a command failed; the connection is still usable.
    case error(String)
    /// `:42`.
    case integer(Int64)
    /// `$5\r\nhello`: binary-safe bytes.
    case bulkString([UInt8])
    /// `*N`: RESP2 array (also RESP3 `~` set and `>` push, which a client treats the same way).
    case array([RESPValue])
    /// `$-1`, `*-1` or RESP3 `_`.
    case null
    /// RESP3 `#t` / `#f`.
    case boolean(Bool)
    /// RESP3 `,3.14` (also `inf`, `-inf`, `nan`).
    case double(Double)
    /// RESP3 `(` big number, kept as its decimal text.
    case bigNumber(String)
    /// RESP3 `%N` map, as key/value pairs in server order.
    case map([RESPPair])

    /// The text of a simple or bulk string (bulk bytes decoded as UTF-8, invalid bytes replaced).
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk or simple string.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// The server's error text, if this reply is an error.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// A short rendering for error messages: type and a bounded preview of the content.
    public var summary: String {
        switch self {
        case .simpleString(let text): "simple string \(RESPValue.preview(text))"
        case .error(let text): "error \(RESPValue.preview(text))"
        case .integer(let value): "integer \(value)"
        case .bulkString(let bytes): "bulk string \(RESPValue.preview(String(decoding: bytes, as: UTF8.self)))"
        case .array(let values): "array of \(values.count)"
        case .null: "null"
        case .boolean(let value): "boolean \(value)"
        case .double(let value): "double \(value)"
        case .bigNumber(let text): "big number \(text)"
        case .map(let pairs): "map of \(pairs.count)"
        }
    }

    static func preview(_ text: String, limit: Int = 60) -> String {
        let cut = text.count > limit ? String(text.prefix(limit)) + "…" : text
        return cut.debugDescription
    }
}

/// A key/value entry of a RESP3 map.
public struct RESPPair: Sendable, Hashable {
    public var key: RESPValue
    public var value: RESPValue

    public init(key: RESPValue, value: RESPValue) {
        self.key = key
        self.value = value
    }
}
