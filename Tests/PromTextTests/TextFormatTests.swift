import PromText
import Testing

/// Text format 0.0.4: what parses and into which families, what is only an oddity, and what fails where.
@Suite("Text format 0.0.4")
struct TextFormatTests {
    struct Good: CustomTestStringConvertible, Sendable {
        var name: String
        var input: String
        var expected: [String]
        var testDescription: String { name }
    }

    static let good: [Good] = [
        Good(name: "counter with HELP and TYPE", input: """
            # HELP http_requests_total Requests served.
            # TYPE http_requests_total counter
            http_requests_total{method="get",code="200"} 1027
            http_requests_total{method="post",code="400"} 3

            """, expected: [
                #"family http_requests_total counter help="Requests served.""#,
                #"  http_requests_total{method="get",code="200"} 1027.0"#,
                #"  http_requests_total{method="post",code="400"} 3.0"#,
            ]),
        Good(name: "escapes in label values and HELP", input: #"""
            # HELP a Line one\nback\\slash
            a{path="C:\\dir",quote="say \"hi\"",nl="x\ny"} 1

            """#, expected: [
                #"family a untyped help="Line one\nback\\slash""#,
                #"  a{path="C:\\dir",quote="say \"hi\"",nl="x\ny"} 1.0"#,
            ]),
        Good(name: "special values and millisecond timestamps", input: """
            a{k="nan"} NaN
            a{k="inf"} +Inf 1500
            a{k="-inf"} -Inf -2000
            a{k="exp"} 1.5e3
            """, expected: [
                "family a untyped",
                #"  a{k="nan"} nan"#,
                #"  a{k="inf"} inf @1.5"#,
                #"  a{k="-inf"} -inf @-2.0"#,
                #"  a{k="exp"} 1500.0"#,
            ]),
        Good(name: "quoted UTF-8 metric and label names inside braces", input: """
            # TYPE "my.metric" gauge
            {"my.metric","label.with.dots"="v",plain="w"} 2

            """, expected: [
                "family my.metric gauge",
                #"  my.metric{label.with.dots="v",plain="w"} 2.0"#,
            ]),
        Good(name: "blanks, tabs, trailing comma and trailing blanks are accepted", input: "  a {x = \"1\" ,\ty=\"2\",} \t 7 \t\n",
             expected: ["family a untyped", #"  a{x="1",y="2"} 7.0"#]),
        Good(name: "histogram with _sum before _bucket is one family", input: """
            # TYPE h histogram
            h_sum{w="1"} 2.5
            h_bucket{le="0.1",w="1"} 1
            h_bucket{le="+Inf",w="1"} 3
            h_count{w="1"} 3

            """, expected: [
                "family h histogram",
                #"  h_sum{w="1"} 2.5"#, #"  h_bucket{le="0.1",w="1"} 1.0"#, #"  h_bucket{le="+Inf",w="1"} 3.0"#,
                #"  h_count{w="1"} 3.0"#,
            ]),
        Good(name: "summary groups quantiles, _sum and _count", input: """
            # TYPE s summary
            s{quantile="0.5"} 0.2
            s_sum 10
            s_count 4

            """, expected: ["family s summary", #"  s{quantile="0.5"} 0.2"#, "  s_sum 10.0", "  s_count 4.0"]),
        Good(name: "_bucket of an undeclared family is its own untyped family", input: "x_bucket{le=\"1\"} 1\n",
             expected: ["family x_bucket untyped", #"  x_bucket{le="1"} 1.0"#]),
        Good(name: "comments and # EOF are ignored, a last line without newline parses", input: """
            # just a comment
            #
            # EOF
            b 1
            """, expected: ["family b untyped", "  b 1.0"]),
        Good(name: "metadata without samples keeps the family", input: "# HELP idle Nothing yet.\n# TYPE idle gauge\n",
             expected: [#"family idle gauge help="Nothing yet.""#]),
        Good(name: "type names are case-insensitive", input: "# TYPE c COUNTER\nc 1\n", expected: ["family c counter", "  c 1.0"]),
    ]

    @Test("good inputs give exact families and samples", arguments: good)
    func parses(_ testCase: Good) throws {
        let exposition = try ExpositionParser.parse(testCase.input, format: .text)
        #expect(render(exposition) == testCase.expected)
        #expect(exposition.oddities.isEmpty)
        #expect(exposition.format == .text)
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        var name: String
        var input: [UInt8]
        var line: Int
        var column: Int
        var reason: String
        var testDescription: String { name }

        init(_ name: String, _ input: String, _ line: Int, _ column: Int, _ reason: String) {
            self.init(name, Array(input.utf8), line, column, reason)
        }

        init(_ name: String, _ input: [UInt8], _ line: Int, _ column: Int, _ reason: String) {
            self.name = name
            self.input = input
            self.line = line
            self.column = column
            self.reason = reason
        }
    }

    static let bad: [Bad] = [
        Bad("invalid escape in a label value", #"a{x="\q"} 1"#, 1, 6, #"invalid escape sequence '\q' in value of label "x""#),
        Bad("invalid escape in HELP", #"# HELP a bad \t escape"#, 1, 14, "invalid escape sequence '\\t' in HELP text"),
        Bad("metric name starting with a digit", "0a 1", 1, 1, "expected a metric name, found '0'"),
        Bad("metric name with a dash", "a-b 1", 1, 2, "invalid character '-' in metric name \"a\""),
        Bad("label name starting with a digit", #"a{1x="1"} 1"#, 1, 3, "expected a label name, found '1'"),
        Bad("missing '=' after a label name", #"a{le "1"} 1"#, 1, 6, #"expected '=' after label name "le", found '"'"#),
        Bad("unquoted label value", "a{x=1} 1", 1, 5, #"expected '"' to start the value of label "x", found '1'"#),
        Bad("raw newline inside a label value", "a{x=\"b\nc\"} 1\n", 1, 7,
            #"value of label "x" opened with '"' at column 5 is not closed before the end of the line"#),
        Bad("duplicate label name", #"a{x="1",x="2"} 1"#, 1, 9, #"duplicate label name "x""#),
        Bad("__name__ as a label", #"a{__name__="b"} 1"#, 1, 3, #"label name "__name__" is reserved"#),
        Bad("value that is not a float", "a x", 1, 3, #"expected a float value for "a", found "x""#),
        Bad("hexadecimal value", "a 0x1p3", 1, 3, "expected a float value"),
        Bad("fractional timestamp", "a 1 1.5", 1, 5, #"expected an integer timestamp in milliseconds, found "1.5""#),
        Bad("text after the timestamp", "a 1 2 3", 1, 7, #"unexpected text after the timestamp: "3""#),
        Bad("exemplar in text format", #"a_total 1 # {id="x"} 1"#, 1, 11, "only allowed in OpenMetrics"),
        Bad("missing value", "a{x=\"1\"}", 1, 9, #"expected a value after "a", found end of line"#),
        Bad("label set not closed (truncated line)", #"a{x="1""#, 1, 8, #"expected ',' or '}' after the value of label "x", found end of line"#),
        Bad("label set not closed after a comma", #"a{x="1","#, 1, 9, "label set opened at column 2 is not closed: expected '}'"),
        Bad("unknown TYPE", "# TYPE a timer\na 1", 1, 10, #"unknown metric type "timer" for "a""#),
        Bad("conflicting TYPE", "# TYPE a gauge\n# TYPE a counter\n", 2, 10,
            #"conflicting # TYPE for "a": counter here, gauge on line 1"#),
        Bad("TYPE after the family's samples", "a 1\n# TYPE a gauge\n", 2, 1, #"# TYPE for "a" comes after its samples"#),
        Bad("negative histogram bucket", "# TYPE h histogram\nh_bucket{le=\"1\"} -1\n", 2, 18, "negative bucket count -1.0"),
        Bad("negative histogram count", "# TYPE h histogram\nh_count 1\nh_count -3\n", 3, 9, "negative count -3.0"),
        Bad("invalid le", "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", 2, 13, #"expected a float as value of label "le""#),
        Bad("invalid quantile", "# TYPE s summary\ns{quantile=\"half\"} 1\n", 2, 12, #"value of label "quantile""#),
        Bad("invalid UTF-8", [0x61, 0x7B, 0x78, 0x3D, 0x22, 0xC3, 0x28, 0x22, 0x7D, 0x20, 0x31], 1, 6, "invalid UTF-8 byte 0xC3"),
        Bad("NUL byte", [0x61, 0x20, 0x31, 0x00], 1, 4, "NUL byte"),
        Bad("binary garbage (gzip magic)", [0x1F, 0x8B, 0x08, 0x00, 0x00], 1, 2, "invalid UTF-8 byte 0x8B"),
        Bad("control byte where a name belongs", [0x01, 0x20, 0x31], 1, 1, "expected a metric name, found byte 0x1"),
        Bad("CRLF line endings", "a 1\r\nb 2\r\n", 1, 4, "carriage return"),
        Bad("error on a later line names that line", "a 1\nb 2\nc{ 3\n", 3, 4, "expected a label name, found '3'"),
    ]

    @Test("bad inputs fail at the exact line and column with a precise reason", arguments: bad)
    func rejects(_ testCase: Bad) {
        #expect {
            try ExpositionParser.parse(testCase.input, format: .text)
        } throws: { error in
            guard let error = error as? ParseError else { return false }
            return error.line == testCase.line && error.column == testCase.column && error.reason.contains(testCase.reason)
        }
        // Show the actual error when the expectation above fails.
        do {
            _ = try ExpositionParser.parse(testCase.input, format: .text)
        } catch {
            #expect(error.line == testCase.line, "\(error)")
            #expect(error.column == testCase.column, "\(error)")
            #expect(error.reason.contains(testCase.reason), "\(error)")
        }
    }

    @Test("interleaved families are merged and recorded")
    func interleaved() throws {
        let exposition = try ExpositionParser.parse("a{x=\"1\"} 1\nb 2\na{x=\"2\"} 3\n", format: .text)
        #expect(render(exposition) == ["family a untyped", #"  a{x="1"} 1.0"#, #"  a{x="2"} 3.0"#, "family b untyped", "  b 2.0"])
        #expect(exposition.oddities.map(\.kind) == [.interleavedFamily])
        #expect(exposition.oddities.first?.family == "a")
        #expect(exposition.oddities.first?.line == 3)
    }

    @Test("duplicate series are kept and recorded, whatever the label order")
    func duplicateSeries() throws {
        let exposition = try ExpositionParser.parse("a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\na{x=\"1\",y=\"3\"} 3\n", format: .text)
        #expect(exposition.family(named: "a")?.samples.map(\.value) == [1, 2, 3])
        #expect(exposition.oddities.count == 1)
        #expect(exposition.oddities.first?.kind == .duplicateSeries)
        #expect(exposition.oddities.first?.line == 2)
        #expect(exposition.oddities.first?.message.contains("repeats line 1") == true)
    }

    @Test("every sample keeps its own labels in written order when label sets repeat across families")
    func repeatedLabelSets() throws {
        // The parser shares one label array between samples with the same set in the same order; sets that differ
        // in order, in one value or in an escaped value must still come out exactly as written.
        let input = """
            a{pid="1",worker="w1"} 1
            b{pid="1",worker="w1"} 2
            b{worker="w1",pid="1"} 3
            c{pid="1",worker="w2"} 4
            c{pid="1",worker="w\\\\1"} 5
            d{pid="1"} 6
            a{pid="1",worker="w1"} 7

            """
        let exposition = try ExpositionParser.parse(input, format: .text)
        let written = exposition.families.flatMap(\.samples).sorted { $0.line < $1.line }
            .map { sample in sample.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",") }
        #expect(written == ["pid=1,worker=w1", "pid=1,worker=w1", "worker=w1,pid=1", "pid=1,worker=w2",
                            "pid=1,worker=w\\1", "pid=1", "pid=1,worker=w1"])
    }

    @Test("past the shared label sets' bound (65,536) and through every table growth, each sample keeps its labels")
    func manyDistinctLabelSets() throws {
        // 70,000 distinct sets, then the first 1,000 again (shared with their first appearance or not, they must
        // read back the same). Also grows the interner and the series table many times.
        var input = "# TYPE m gauge\n"
        for i in 0..<70_000 { input += "m{id=\"\(i)\",k=\"\(i % 7)\"} \(i)\n" }
        for i in 0..<1_000 { input += "n{id=\"\(i)\",k=\"\(i % 7)\"} \(i)\n" }
        let exposition = try ExpositionParser.parse(input, format: .text)
        for name in ["m", "n"] {
            let samples = try #require(exposition.family(named: name)).samples
            let wrong = samples.filter { sample in
                let i = Int(sample.value)
                return sample.labels != [Label(name: "id", value: "\(i)"), Label(name: "k", value: "\(i % 7)")]
            }
            #expect(wrong.isEmpty, "\(name): \(wrong.prefix(3).map { "\($0.line): \($0.labels)" })")
            #expect(samples.count == (name == "m" ? 70_000 : 1_000))
        }
    }

    @Test("le and quantile values are checked as written: escapes and empty values are not floats")
    func boundsAsWritten() {
        let cases = [
            ("# TYPE h histogram\nh_bucket{le=\"1\\n\"} 1\n", "label \"le\""),
            ("# TYPE h histogram\nh_bucket{le=\"\"} 1\n", "label \"le\""),
            ("# TYPE s summary\ns{quantile=\"0.5x\"} 1\n", "label \"quantile\""),
        ]
        for (input, reason) in cases {
            #expect(throws: ParseError.self) { try ExpositionParser.parse(input, format: .text) }
            do {
                _ = try ExpositionParser.parse(input, format: .text)
            } catch {
                #expect(error.line == 2 && error.reason.contains(reason), "\(error)")
            }
        }
        #expect((try? ExpositionParser.parse("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n", format: .text)) != nil)
    }

    @Test("a second HELP or TYPE of the same type is duplicate metadata, the first HELP is kept")
    func duplicateMetadata() throws {
        let input = "# HELP g First.\n# TYPE g gauge\n# HELP g Second.\n# TYPE g gauge\ng 1\n"
        let exposition = try ExpositionParser.parse(input, format: .text)
        #expect(render(exposition) == [#"family g gauge help="First.""#, "  g 1.0"])
        #expect(exposition.oddities.map(\.kind) == [.duplicateMetadata, .duplicateMetadata])
        #expect(exposition.oddities.map(\.line) == [3, 4])
    }

    @Test("oddities are capped at 1000 and the rest counted")
    func odditiesAreBounded() throws {
        let input = String(repeating: "a 1\n", count: 1501)
        let exposition = try ExpositionParser.parse(input, format: .text)
        #expect(exposition.sampleCount == 1501)
        #expect(exposition.oddities.count == 1000)
        #expect(exposition.suppressedOddities == 500)
    }

    @Test("a line longer than the limit is an error, not unbounded buffering")
    func overlongLine() {
        var parser = ExpositionParser(format: .text)
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 64 << 10)
        #expect(throws: ParseError.self) {
            for _ in 0...(ExpositionParser.maximumLineLength / chunk.count) { try parser.consume(chunk) }
        }
        #expect {
            try parser.consume([0x0A])
        } throws: { error in
            (error as? ParseError)?.reason.contains("longer than \(ExpositionParser.maximumLineLength) bytes") == true
        }
    }

    @Test("an over-long line is reported on its own line number, whether it arrives in one chunk or in many")
    func overlongLineNumber() {
        let input = Array("a 1\nb 2\n".utf8) + [UInt8](repeating: UInt8(ascii: "c"), count: ExpositionParser.maximumLineLength + 1)
            + Array("\nd 4\n".utf8)
        func error(chunkSize: Int) -> ParseError? {
            var parser = ExpositionParser(format: .text)
            do {
                for start in stride(from: 0, to: input.count, by: chunkSize) {
                    try parser.consume(Array(input[start..<min(start + chunkSize, input.count)]))
                }
                _ = try parser.finish()
            } catch {
                return error
            }
            return nil
        }
        let whole = error(chunkSize: input.count)
        #expect(whole?.line == 3)
        #expect(whole?.reason.contains("longer than \(ExpositionParser.maximumLineLength) bytes") == true)
        #expect(error(chunkSize: 64 << 10) == whole)
    }

    @Test("after an error the parser keeps failing with the same error")
    func stickyError() throws {
        var parser = ExpositionParser(format: .text)
        let first = #expect(throws: ParseError.self) { try parser.consume(Array("a x\n".utf8)) }
        let again = #expect(throws: ParseError.self) { try parser.consume(Array("b 1\n".utf8)) }
        #expect(first == again)
        #expect(first?.line == 1)
    }
}
