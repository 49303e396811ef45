import Testing

@testable import RESP

@Suite("RESP parser")
struct RESPParserTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var wire: String
        var values: [RESPValue]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "simple string", wire: "+OK\r\n", values: [.simpleString("OK")]),
        Case(name: "error", wire: "-ERR unknown command 'FOO'\r\n", values: [.error("ERR unknown command 'FOO'")]),
        Case(name: "integer", wire: ":-42\r\n:0\r\n:+7\r\n", values: [.integer(-42), .integer(0), .integer(7)]),
        Case(name: "int64 extremes", wire: ":9223372036854775807\r\n:-9223372036854775807\r\n:-9223372036854775808\r\n",
             values: [.integer(.max), .integer(-.max), .integer(.min)]),
        Case(name: "bulk string", wire: "$5\r\nhello\r\n", values: [.bulkString(Array("hello".utf8))]),
        Case(name: "empty bulk", wire: "$0\r\n\r\n", values: [.bulkString([])]),
        Case(name: "bulk with CRLF inside", wire: "$4\r\na\r\nb\r\n", values: [.bulkString(Array("a\r\nb".utf8))]),
        Case(name: "null bulk and null array", wire: "$-1\r\n*-1\r\n", values: [.null, .null]),
        Case(name: "array", wire: "*3\r\n$1\r\na\r\n:1\r\n+b\r\n",
             values: [.array([.bulkString([97]), .integer(1), .simpleString("b")])]),
        Case(name: "empty array", wire: "*0\r\n", values: [.array([])]),
        Case(name: "nested arrays", wire: "*2\r\n*1\r\n+x\r\n*0\r\n", values: [.array([.array([.simpleString("x")]), .array([])])]),
        Case(name: "SCAN reply", wire: "*2\r\n$2\r\n17\r\n*2\r\n$3\r\nk:1\r\n$3\r\nk:2\r\n",
             values: [.array([.bulkString(Array("17".utf8)), .array([.bulkString(Array("k:1".utf8)), .bulkString(Array("k:2".utf8))])])]),
        Case(name: "pipelined replies", wire: "+hash\r\n:4999\r\n+none\r\n:-2\r\n",
             values: [.simpleString("hash"), .integer(4999), .simpleString("none"), .integer(-2)]),
        Case(name: "RESP3 null", wire: "_\r\n", values: [.null]),
        Case(name: "RESP3 booleans", wire: "#t\r\n#f\r\n", values: [.boolean(true), .boolean(false)]),
        Case(name: "RESP3 doubles", wire: ",3.25\r\n,-inf\r\n,1e3\r\n", values: [.double(3.25), .double(-.infinity), .double(1000)]),
        Case(name: "RESP3 big number", wire: "(-123456789012345678901234567890\r\n",
             values: [.bigNumber("-123456789012345678901234567890")]),
        Case(name: "RESP3 verbatim string", wire: "=8\r\ntxt:abcd\r\n", values: [.bulkString(Array("abcd".utf8))]),
        Case(name: "RESP3 blob error", wire: "!9\r\nSYNTAX x\n\r\n", values: [.error("SYNTAX x\n")]),
        Case(name: "RESP3 map", wire: "%2\r\n+value\r\n$1\r\n1\r\n+timestamp\r\n:0\r\n",
             values: [.map([RESPPair(key: .simpleString("value"), value: .bulkString([49])),
                            RESPPair(key: .simpleString("timestamp"), value: .integer(0))])]),
        Case(name: "RESP3 set and push read as arrays", wire: "~2\r\n:1\r\n:2\r\n>2\r\n+message\r\n+hi\r\n",
             values: [.array([.integer(1), .integer(2)]), .array([.simpleString("message"), .simpleString("hi")])]),
        Case(name: "RESP3 attribute before a reply is dropped", wire: "|1\r\n+ttl\r\n:3\r\n:5\r\n", values: [.integer(5)]),
        Case(name: "RESP3 attribute inside an array does not count as an element",
             wire: "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", values: [.array([.integer(1), .integer(2)])]),
    ]

    private func parseAll(_ chunks: [ArraySlice<UInt8>]) throws -> [RESPValue] {
        var parser = RESPParser()
        var values: [RESPValue] = []
        for chunk in chunks {
            parser.append(chunk)
            while let value = try parser.next() { values.append(value) }
        }
        #expect(!parser.isMidReply)
        return values
    }

    @Test("parses a whole buffer", arguments: cases)
    func whole(_ testCase: Case) throws {
        #expect(try parseAll([Array(testCase.wire.utf8)[...]]) == testCase.values)
    }

    @Test("parses the same values fed one byte at a time", arguments: cases)
    func byteByByte(_ testCase: Case) throws {
        let bytes = Array(testCase.wire.utf8)
        #expect(try parseAll(bytes.indices.map { bytes[$0...$0] }) == testCase.values)
    }

    @Test("parses the same values split at every position", arguments: cases)
    func everySplit(_ testCase: Case) throws {
        let bytes = Array(testCase.wire.utf8)
        for split in 1..<bytes.count {
            #expect(try parseAll([bytes[..<split], bytes[split...]]) == testCase.values, "split at \(split)")
        }
    }

    @Test("a reply cut mid-frame yields nothing and reports a partial reply")
    func cutMidFrame() throws {
        for wire in ["$10\r\nhello", "*2\r\n:1\r\n", "+OK\r", ":12", "*1\r\n$3\r\nab"] {
            var parser = RESPParser()
            parser.append(Array(wire.utf8))
            #expect(try parser.next() == nil, "\(wire.debugDescription)")
            #expect(parser.isMidReply, "\(wire.debugDescription)")
        }
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        var name: String
        var wire: String
        var offset: Int
        var message: String
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        BadCase(name: "an HTTP server", wire: "HTTP/1.1 400 Bad Request\r\n", offset: 0, message: "expected a RESP type byte"),
        BadCase(name: "a TLS alert", wire: "\u{15}\u{3}\u{1}\u{0}\u{2}", offset: 0, message: "saw \"\\x15\\x03"),
        BadCase(name: "garbage after a good reply", wire: "+OK\r\n?", offset: 5, message: "expected a RESP type byte"),
        BadCase(name: "non-numeric integer", wire: ":12a\r\n", offset: 0, message: "integer reply \"12a\" is not a 64-bit integer"),
        BadCase(name: "empty integer", wire: ":\r\n", offset: 0, message: "is not a 64-bit integer"),
        BadCase(name: "integer overflow", wire: ":9999999999999999999\r\n", offset: 0, message: "overflows a 64-bit integer"),
        BadCase(name: "integer overflow below Int64.min", wire: ":-9223372036854775809\r\n", offset: 0, message: "overflows a 64-bit integer"),
        BadCase(name: "bulk longer than announced", wire: "$3\r\nabcd\r\n", offset: 7, message: "is not followed by CRLF"),
        BadCase(name: "negative bulk length", wire: "$-5\r\n", offset: 0, message: "bulk length -5 is outside"),
        BadCase(name: "negative array length", wire: "*-2\r\n", offset: 0, message: "aggregate length -2 is outside"),
        BadCase(name: "bare LF", wire: "+OK\n", offset: 3, message: "line ends with LF without CR"),
        BadCase(name: "CR without LF", wire: "+OK\rX", offset: 4, message: "expected LF after CR"),
        BadCase(name: "bad boolean", wire: "#x\r\n", offset: 0, message: "boolean must be 't' or 'f'"),
        BadCase(name: "bad double", wire: ",abc\r\n", offset: 0, message: "double reply \"abc\" is not a number"),
        BadCase(name: "bad verbatim", wire: "=3\r\nabc\r\n", offset: 0, message: "verbatim string must start"),
        BadCase(name: "null with payload", wire: "_x\r\n", offset: 0, message: "null '_' must be followed by CRLF"),
        BadCase(name: "big number with letters", wire: "(12x\r\n", offset: 0, message: "big number \"12x\" is not an integer"),
        BadCase(name: "error inside an array", wire: "*2\r\n:1\r\n$x\r\n", offset: 8, message: "bulk length \"x\""),
    ]

    @Test("protocol garbage is an error naming the byte offset and what was seen", arguments: badCases)
    func garbage(_ bad: BadCase) {
        var parser = RESPParser()
        parser.append(Array(bad.wire.utf8))
        var thrown: RESPProtocolError?
        do {
            while try parser.next() != nil {}
        } catch {
            thrown = error
        }
        guard let error = thrown else {
            Issue.record("\(bad.wire.debugDescription) parsed without error")
            return
        }
        #expect(error.offset == bad.offset)
        #expect(error.message.contains(bad.message), "\(error.message)")
    }

    @Test("limits bound nesting, line length and bulk size instead of allocating")
    func limits() {
        let limits = RESPParser.Limits(maxBulkLength: 1024, maxAggregateCount: 10, maxDepth: 3, maxLineLength: 16)
        let cases: [(String, String)] = [
            (String(repeating: "*1\r\n", count: 4) + ":1\r\n", "nested deeper than 3"),
            ("+" + String(repeating: "a", count: 40), "no CRLF within 16 bytes"),
            ("$1025\r\n", "bulk length 1025 is outside 0…1024"),
            ("*11\r\n", "aggregate length 11 is outside 0…10"),
        ]
        for (wire, message) in cases {
            var parser = RESPParser(limits: limits)
            parser.append(Array(wire.utf8))
            #expect {
                while try parser.next() != nil {}
            } throws: { error in
                (error as? RESPProtocolError)?.message.contains(message) == true
            }
        }
    }

    @Test("an over-long line is rejected alike whether it arrives in one read or in pieces", arguments: [1, 3, 7, 100])
    func overlongLineAnySplit(pieceSize: Int) throws {
        let limits = RESPParser.Limits(maxLineLength: 16)
        func outcome(_ wire: String, pieces size: Int) -> Result<[RESPValue], RESPProtocolError> {
            var parser = RESPParser(limits: limits)
            let bytes = Array(wire.utf8)
            var replies: [RESPValue] = []
            do {
                for start in stride(from: 0, to: bytes.count, by: size) {
                    parser.append(bytes[start..<min(start + size, bytes.count)])
                    while let reply = try parser.next() { replies.append(reply) }
                }
            } catch {
                return .failure(error)
            }
            return .success(replies)
        }
        let tooLong = "+" + String(repeating: "a", count: 16) + "\r\n"  // 17 bytes from type byte to CRLF
        let whole = outcome(tooLong, pieces: tooLong.utf8.count)
        guard case .failure(let error) = whole else {
            Issue.record("a 17-byte line passed a 16-byte limit: \(whole)")
            return
        }
        #expect(error.offset == 0)
        #expect(error.message.contains("longer than 16 bytes"), "\(error.message)")
        #expect(outcome(tooLong, pieces: pieceSize) == whole)
        // The longest allowed line passes both ways, its CR arriving alone or not.
        let longest = "+" + String(repeating: "a", count: 15) + "\r\n"
        let expected: Result<[RESPValue], RESPProtocolError> = .success([.simpleString(String(repeating: "a", count: 15))])
        #expect(outcome(longest, pieces: longest.utf8.count) == expected)
        #expect(outcome(longest, pieces: pieceSize) == expected)
    }

    @Test("a long reply stream is consumed with a bounded buffer")
    func compaction() throws {
        var parser = RESPParser()
        var count = 0
        let chunk = Array(String(repeating: ":12345\r\n", count: 10_000).utf8)
        for _ in 0..<20 {
            parser.append(chunk)
            while let value = try parser.next() {
                #expect(value == .integer(12345))
                count += 1
            }
            #expect(parser.bufferedByteCount == 0)
        }
        #expect(count == 200_000)
    }
}

@Suite("RESP command encoding")
struct RESPEncoderTests {
    @Test("commands are arrays of bulk strings; binary keys are kept byte for byte")
    func encodes() throws {
        var buffer = RESPCommandBuffer()
        buffer.append(["SCAN", "0", "MATCH", "gunicorn:*"])
        buffer.append("PTTL", key: [0x6b, 0xff, 0x0d])
        #expect(buffer.count == 2)
        let expected = Array("*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$10\r\ngunicorn:*\r\n*2\r\n$4\r\nPTTL\r\n$3\r\n".utf8)
            + [0x6b, 0xff, 0x0d, 13, 10]
        #expect(buffer.bytes == expected)
        // The encoding is what the parser reads back.
        var parser = RESPParser()
        parser.append(buffer.bytes)
        #expect(try parser.next() == .array(["SCAN", "0", "MATCH", "gunicorn:*"].map { .bulkString(Array($0.utf8)) }))
        #expect(try parser.next() == .array([.bulkString(Array("PTTL".utf8)), .bulkString([0x6b, 0xff, 0x0d])]))
    }

    @Test("addresses parse as HOST:PORT", arguments: [
        ("127.0.0.1:6379", "127.0.0.1", 6379),
        ("redis-service:6380", "redis-service", 6380),
        ("[::1]:6379", "::1", 6379),
    ])
    func endpoint(_ text: String, host: String, port: Int) throws {
        let endpoint = try RedisEndpoint.parse(text).get()
        #expect(endpoint.host == host)
        #expect(endpoint.port == port)
        #expect(endpoint.description == text)
    }

    @Test("bad addresses are rejected with the reason", arguments: [
        ("localhost", "has no port"),
        ("localhost:0", "port '0' is not a number in 1…65535"),
        ("localhost:http", "port 'http'"),
        ("::1:6379", "IPv6 address in brackets"),
        (":6379", "empty host"),
        // Credentials are refused without being echoed (a third adversarial pass saw the password printed).
        ("redis://:hunter2@127.0.0.1:6379", "'redis://REDACTED@127.0.0.1:6379' is not HOST:PORT"),
        ("default:hunter2@127.0.0.1:6379", "'REDACTED@127.0.0.1:6379' is not HOST:PORT"),
        ("rediss://cache:6380", "'rediss://cache:6380' is not HOST:PORT"),
    ])
    func badEndpoint(_ text: String, reason: String) {
        guard case .failure(let error) = RedisEndpoint.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.description.contains(reason), "\(error)")
        #expect(!error.description.contains("hunter2"), "\(error)")
    }
}
