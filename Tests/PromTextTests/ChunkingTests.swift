import PromText
import Testing

/// Chunk boundaries may fall anywhere — inside a token, an escape, a UTF-8 sequence or a line ending — and
/// must not change the outcome (families, oddities or the exact error).
@Suite("Chunk boundaries")
struct ChunkingTests {
    struct Input: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        var format: ExpositionFormat
        var testDescription: String { "\(name) (\(format.rawValue))" }
    }

    static let inputs: [Input] = [
        Input(name: "text with escapes, UTF-8 and oddities", bytes: Array(#"""
            # HELP work_total Zählt \\ und \n.
            # TYPE work_total counter
            work_total{name="Jürgen \"J\"",path="a\\b"} 1 1700000000000
            {"my.metric","ä.b"="ü"} 2
            # TYPE h histogram
            h_sum 1
            h_bucket{le="+Inf"} 2
            other 3
            h_count 2
            other 3
            """#.utf8), format: .text),
        Input(name: "text failing on the last line", bytes: Array("a{x=\"é\"} 1\nb{y=\"ü\\q\"} 2\n".utf8), format: .text),
        Input(name: "text with invalid UTF-8 split across chunks", bytes: Array("a{x=\"".utf8) + [0xE2, 0x82] + Array("\"} 1\n".utf8),
              format: .text),
        Input(name: "OpenMetrics with exemplars and wide characters", bytes: Array("""
            # TYPE a histogram
            # HELP a ☃ help
            a_bucket{le="1.0",x="☃"} 0 # {a="☃"} 0.5
            a_bucket{le="+Inf",x="☃"} 3 # {a="d"} 4 123.5
            a_count{x="☃"} 3
            a_sum{x="☃"} 2
            # EOF
            """.utf8), format: .openMetrics),
        Input(name: "OpenMetrics ending in # EOF without newline", bytes: Array("a 1\n# EOF".utf8), format: .openMetrics),
        Input(name: "OpenMetrics with text after # EOF", bytes: Array("a 1\n# EOF\nx".utf8), format: .openMetrics),
    ]

    @Test("split in two at every byte offset", arguments: inputs)
    func everySplit(_ input: Input) {
        let whole = outcome(input.bytes, input.format)
        for offset in 0...input.bytes.count {
            let chunks = [input.bytes[..<offset], input.bytes[offset...]]
            let split = outcome(chunks: chunks, input.format)
            #expect(split == whole, "split at byte \(offset)")
            if split != whole { return }
        }
    }

    @Test("fed in chunks of 1 to 7 bytes", arguments: inputs, 1...7)
    func smallChunks(_ input: Input, size: Int) {
        let chunks = stride(from: 0, to: input.bytes.count, by: size).map {
            input.bytes[$0..<min($0 + size, input.bytes.count)]
        }
        #expect(outcome(chunks: chunks, input.format) == outcome(input.bytes, input.format))
    }

    @Test("the chunked outcomes are real results, not all errors")
    func outcomesAreMeaningful() {
        #expect(outcome(Self.inputs[0].bytes, .text).contains(#"  my.metric{ä.b="ü"} 2.0"#))
        #expect(outcome(Self.inputs[1].bytes, .text) == [#"error line 2:8: invalid escape sequence '\q' in value of label "y" (only \\, \" and \n are allowed)"#])
        #expect(outcome(Self.inputs[2].bytes, .text) == ["error line 1:6: invalid UTF-8 byte 0xE2"])
        #expect(outcome(Self.inputs[3].bytes, .openMetrics).first == "family a histogram help=\"☃ help\"")
        #expect(outcome(Self.inputs[5].bytes, .openMetrics) == ["error line 3:1: text after '# EOF' (it must be the last line)"])
    }
}
