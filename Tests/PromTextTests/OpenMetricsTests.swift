import PromText
import Testing

/// OpenMetrics 1.0 beyond the corpus verdicts: exact values of what parses, and where failures point.
@Suite("OpenMetrics 1.0")
struct OpenMetricsTests {
    struct Good: CustomTestStringConvertible, Sendable {
        var name: String
        var input: String
        var expected: [String]
        var testDescription: String { name }
    }

    static let good: [Good] = [
        Good(name: "counter family drops _total; exemplar and fractional timestamps", input: """
            # TYPE req counter
            # HELP req Requests.
            req_total{code="200"} 3 1700000000.25 # {trace_id="abc"} 0.5 1700000000.125
            req_created{code="200"} 1.6e9 1700000000.25
            # EOF

            """, expected: [
                #"family req counter help="Requests.""#,
                #"  req_total{code="200"} 3.0 @1700000000.25 # {trace_id="abc"} 0.5 @1700000000.125"#,
                #"  req_created{code="200"} 1600000000.0 @1700000000.25"#,
            ]),
        Good(name: "UNIT, gauge, unknown family from a bare sample", input: """
            # TYPE temp_celsius gauge
            # UNIT temp_celsius celsius
            temp_celsius -3.5
            other 1
            # EOF
            """, expected: ["family temp_celsius gauge unit=celsius", "  temp_celsius -3.5", "family other unknown", "  other 1.0"]),
        Good(name: "histogram with +Inf, count and sum", input: """
            # TYPE lat histogram
            lat_bucket{le="0.5"} 1
            lat_bucket{le="+Inf"} 2
            lat_count 2
            lat_sum 0.7
            # EOF
            """, expected: [
                "family lat histogram", #"  lat_bucket{le="0.5"} 1.0"#, #"  lat_bucket{le="+Inf"} 2.0"#, "  lat_count 2.0",
                "  lat_sum 0.7",
            ]),
        Good(name: "stateset, info and gaugehistogram", input: """
            # TYPE feature stateset
            feature{feature="a"} 1
            feature{feature="b"} 0
            # TYPE build info
            build_info{version="1.2"} 1
            # TYPE queue gaugehistogram
            queue_bucket{le="+Inf"} 4
            queue_gcount 4
            queue_gsum 9
            # EOF
            """, expected: [
                "family feature stateset", #"  feature{feature="a"} 1.0"#, #"  feature{feature="b"} 0.0"#,
                "family build info", #"  build_info{version="1.2"} 1.0"#,
                "family queue gaugehistogram", #"  queue_bucket{le="+Inf"} 4.0"#, "  queue_gcount 4.0", "  queue_gsum 9.0",
            ]),
        Good(name: "a group is the same whatever the label order", input: """
            # TYPE h histogram
            h_bucket{a="x",le="1"} 0
            h_bucket{le="+Inf",a="x"} 1
            h_count{a="x"} 1
            h_sum{a="x"} 0.5
            # EOF
            """, expected: [
                "family h histogram", #"  h_bucket{a="x",le="1"} 0.0"#, #"  h_bucket{le="+Inf",a="x"} 1.0"#,
                #"  h_count{a="x"} 1.0"#, #"  h_sum{a="x"} 0.5"#,
            ]),
        Good(name: "OpenMetrics keeps unknown escapes as written", input: #"""
            # HELP e a\tb\\c
            e{v="x\zy\"q"} 1
            # EOF
            """#, expected: [#"family e unknown help="a\\tb\\c""#, #"  e{v="x\\zy\"q"} 1.0"#]),
    ]

    @Test("good inputs give exact families and samples", arguments: good)
    func parses(_ testCase: Good) throws {
        let exposition = try ExpositionParser.parse(testCase.input, format: .openMetrics)
        #expect(render(exposition) == testCase.expected)
        #expect(exposition.format == .openMetrics)
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        var name: String
        var input: String
        var line: Int
        var column: Int
        var reason: String
        var testDescription: String { name }
    }

    static let bad: [Bad] = [
        Bad(name: "missing # EOF points past the last line", input: "a 1\nb 2\n", line: 3, column: 1, reason: "missing '# EOF'"),
        Bad(name: "text after # EOF", input: "a 1\n# EOF\nb 2\n", line: 3, column: 1, reason: "text after '# EOF'"),
        Bad(name: "interleaved families", input: "a 1\nb 1\na 2\n# EOF\n", line: 3, column: 1,
            reason: #"family "a" (unknown) claims the name "a", already used by an earlier family"#),
        Bad(name: "double space", input: "a  1\n# EOF\n", line: 1, column: 3, reason: "expected a value, found ' '"),
        Bad(name: "comment line", input: "# hello\n# EOF\n", line: 1, column: 3, reason: #"unknown metadata keyword "hello""#),
        Bad(name: "histogram without +Inf", input: "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n# EOF\n", line: 2, column: 1,
            reason: #"histogram "h" has no le="+Inf" bucket"#),
        Bad(name: "exemplar on a gauge", input: "# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n", line: 2, column: 5,
            reason: "only histogram/gaugehistogram buckets and counter _total samples may carry exemplars"),
        Bad(name: "a group that comes back (label order does not matter)",
            input: "# TYPE g gauge\ng{a=\"1\",b=\"2\"} 1\ng{a=\"2\",b=\"2\"} 1\ng{b=\"2\",a=\"1\"} 1\n# EOF\n", line: 4, column: 1,
            reason: #"samples of "g" with labels {b="2",a="1"} are not contiguous"#),
        Bad(name: "a histogram bucket count that decreases within a group",
            input: "# TYPE h histogram\nh_bucket{le=\"1\",a=\"x\"} 2\nh_bucket{a=\"x\",le=\"+Inf\"} 1\n# EOF\n", line: 3,
            column: 1, reason: #"bucket counts of histogram "h" decrease (1.0 after 2.0)"#),
        Bad(name: "untyped is text format", input: "# TYPE a untyped\n# EOF\n", line: 1, column: 10,
            reason: #"OpenMetrics says "unknown""#),
    ]

    @Test("bad inputs fail at the exact line and column with a precise reason", arguments: bad)
    func rejects(_ testCase: Bad) {
        do {
            let exposition = try ExpositionParser.parse(testCase.input, format: .openMetrics)
            Issue.record("parsed \(exposition.families.count) families; expected \(testCase.reason)")
        } catch {
            #expect(error.line == testCase.line, "\(error)")
            #expect(error.column == testCase.column, "\(error)")
            #expect(error.reason.contains(testCase.reason), "\(error)")
        }
    }

    @Test("a group's samples all have timestamps or none do")
    func timestampPresenceIsConsistent() {
        #expect(throws: ParseError(line: 3, column: 25, reason: #""req_created" mixes samples with and without timestamps in one group"#)) {
            try ExpositionParser.parse("# TYPE req counter\nreq_total{code=\"200\"} 3 17\nreq_created{code=\"200\"} 1.6e9\n# EOF\n", format: .openMetrics)
        }
    }

    @Test("an exemplar with more labels than its sample leaves the next sample's labels intact (FuzzPromText crash c6e405b0)")
    func exemplarWithMoreLabels() throws {
        let input = """
            # TYPE a counter
            a_total{w="0"} 1 # {x="1",y="2"} 1
            # TYPE b gauge
            b{p="1",q="2"} 1
            # EOF

            """
        // Before the fix this trapped (index out of range) on b's second label.
        let exposition = try ExpositionParser.parse(input, format: .openMetrics)
        #expect(exposition.families.count == 2)
        #expect(exposition.families.first?.samples.first?.exemplar?.labels.map(\.name) == ["x", "y"])
        #expect(exposition.families.last?.samples.first?.labels.map(\.name) == ["p", "q"])
        #expect(exposition.families.last?.samples.first?.labels.map(\.value) == ["1", "2"])
    }

    @Test("a NUL byte is allowed inside HELP text in OpenMetrics (corpus null_byte) but not in text format")
    func nulInHelp() throws {
        let input: [UInt8] = Array("# HELP a he".utf8) + [0] + Array("lp\n# EOF\n".utf8)
        let exposition = try ExpositionParser.parse(input, format: .openMetrics)
        #expect(exposition.families.first?.help == "he\u{0}lp")
        #expect(throws: ParseError(line: 1, column: 12, reason: "NUL byte in input (binary data?)")) {
            try ExpositionParser.parse(input, format: .text)
        }
    }
}
