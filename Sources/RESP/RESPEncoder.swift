/// A batch of commands encoded as RESP arrays of bulk strings, ready to be written in one go (pipelining).
public struct RESPCommandBuffer: Sendable {
    /// The encoded bytes of every command appended so far.
    public private(set) var bytes: [UInt8] = []
    /// How many commands the buffer holds (= how many replies to read).
    public private(set) var count = 0

    public init() {}

    /// Appends one command, e.g. `["SCAN", "0", "MATCH", "gunicorn:*"]`.
    public mutating func append(_ arguments: [String]) {
        header(arguments.count)
        for argument in arguments { bulk(argument.utf8) }
    }

    /// Appends a command with one binary key, e.g. `PTTL <key>`, without converting the key to a String.
    public mutating func append(_ command: String, key: [UInt8]) {
        header(2)
        bulk(command.utf8)
        bulk(key)
    }

    /// Appends a command with binary arguments.
    public mutating func append(bytes arguments: [[UInt8]]) {
        header(arguments.count)
        for argument in arguments { bulk(argument) }
    }

    public var isEmpty: Bool { count == 0 }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        count = 0
    }

    private mutating func header(_ arguments: Int) {
        count += 1
        bytes.append(UInt8(ascii: "*"))
        decimal(arguments)
    }

    private mutating func bulk<C: Collection<UInt8>>(_ argument: C) {
        bytes.append(UInt8(ascii: "$"))
        decimal(argument.count)
        bytes.append(contentsOf: argument)
        bytes.append(13)
        bytes.append(10)
    }

    /// A non-negative count in ASCII digits and CRLF, without building a String (this runs twice per command).
    private mutating func decimal(_ value: Int) {
        // Argument counts and key lengths are almost always one or two digits.
        if value < 10 {
            bytes.append(UInt8(48 + value))
            bytes.append(13)
            bytes.append(10)
            return
        }
        if value < 100 {
            bytes.append(UInt8(48 + value / 10))
            bytes.append(UInt8(48 + value % 10))
            bytes.append(13)
            bytes.append(10)
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(48 + rest / divisor))
            rest %= divisor
            divisor /= 10
        }
        bytes.append(13)
        bytes.append(10)
    }
}
