import Foundation
import KubeModel
import Testing

/// `JSONValue.parse(json:)` parses by hand; it must build the same tree `JSONDecoder` built (what it replaced), refuse
/// what is not JSON with Go's wording, and differ only where Go's decoder (the API server's) differs.
@Suite("JSONValue parsing")
struct JSONValueParsingTests {
    static func reference(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test("3,000 random documents, written compact and pretty, parse to what JSONDecoder builds")
    func matchesJSONDecoder() throws {
        var random = JSONValueSerializationTests.Seeded(state: 20261202)
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted]
        for index in 0..<3000 {
            let document = JSONValueSerializationTests.value(&random, depth: 0)
            for data in [try document.jsonData(), try pretty.encode(document)] {
                let ours = try JSONValue.parse(json: data)
                let theirs = try JSONDecoder().decode(JSONValue.self, from: data)
                #expect(ours == theirs, "document \(index): \(String(decoding: data, as: UTF8.self))")
                if ours != theirs { return }
            }
        }
    }

    @Test("escapes, surrogate pairs, numbers and literals read as JSONDecoder reads them")
    func scalars() throws {
        let texts = [
            #""a\"b\\c\/d\b\f\n\r\t""#, #""\u00e9\u0000\u001F\uFFFF""#, #""\ud83d\ude00 😀 é""#, "0", "-0", "12", "-12.5", "1e3", "1E-3",
            "2.5e+10", "123456789012345", "1234567890123456789", "9007199254740993", "0.1", "5e-324", "1.7976931348623157e308",
            "true", "false", "null", " [ 1 , {\"a\" : [ ] } ]\n", "{}", "[]", #"{"a":{"b":{"c":[null,true,"x"]}}}"#,
        ]
        for text in texts {
            #expect(try JSONValue.parse(json: Data(text.utf8)) == (try Self.reference(text)), "\(text)")
        }
        if case .number(let zero) = try JSONValue.parse(json: Data("-0".utf8)) { #expect(zero.sign == .minus) } else { Issue.record("-0 is not a number") }
    }

    @Test("not JSON: an error worded as Go's encoding/json words it, with where")
    func refusals() {
        let cases: [(String, String)] = [
            ("", "unexpected end of JSON input"),
            ("{", "unexpected end of JSON input"),
            (#"{"a":1"#, "unexpected end of JSON input"),
            ("x", "invalid character 'x' looking for beginning of value"),
            ("{a:1}", "invalid character 'a' looking for beginning of object key string"),
            (#"{"a" 1}"#, "invalid character '1' after object key"),
            (#"{"a":1 "b":2}"#, "invalid character '\"' after object key:value pair"),
            ("[1 2]", "invalid character '2' after array element"),
            ("[1,]", "invalid character ']' looking for beginning of value"),
            ("tru", "unexpected end of JSON input"),
            ("trux", "invalid character 'x' in literal true (expecting 'e')"),
            ("01", "invalid character '1' after top-level value"),
            ("1.", "unexpected end of JSON input"),
            ("1.x", "invalid character 'x' after decimal point in numeric literal"),
            ("1e", "unexpected end of JSON input"),
            ("-", "unexpected end of JSON input"),
            ("+1", "invalid character '+' looking for beginning of value"),
            (#""a\x""#, "invalid character 'x' in string escape code"),
            (#""\u12G4""#, "invalid character 'G' in \\u hexadecimal character escape"),
            ("\"a\u{1}b\"", "invalid character '\\x01' in string literal"),
            ("\"a\nb\"", "invalid character '\\n' in string literal"),
            ("\\", "invalid character '\\\\' looking for beginning of value"),
            ("'", "invalid character '\\'' looking for beginning of value"),
            // The first byte of "é" (0xC3), quoted as the code point U+00C3, as Go does.
            ("é", "invalid character 'Ã' looking for beginning of value"),
            ("\"abc", "unexpected end of JSON input"),
            ("{} {}", "invalid character '{' after top-level value"),
            ("1e400", "number 1e400 is out of range"),
        ]
        for (text, message) in cases {
            do {
                let value = try JSONValue.parse(json: Data(text.utf8))
                Issue.record("\(text.debugDescription) parsed as \(value)")
            } catch let error as JSONSyntaxError {
                #expect(error.message == message, "\(text.debugDescription)")
                #expect(error.offset <= text.utf8.count)
            } catch {
                Issue.record("\(text.debugDescription): \(error)")
            }
            // JSONDecoder refuses them too, except a trailing comma, which it lets pass and Go does not.
            if text == "[1,]" {
                #expect((try? Self.reference(text)) == [1])
            } else {
                #expect(throws: (any Error).self, "\(text.debugDescription)") { _ = try Self.reference(text) }
            }
        }
    }

    @Test("nesting beyond 512 levels is refused, not recursed on; 512 is accepted")
    func depth() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONSyntaxError.self) { _ = try JSONValue.parse(json: Data(deep.utf8)) }
        let objects = String(repeating: #"{"a":"#, count: 513) + "1" + String(repeating: "}", count: 513)
        #expect(throws: JSONSyntaxError.self) { _ = try JSONValue.parse(json: Data(objects.utf8)) }
        let limit = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        var value = try JSONValue.parse(json: Data(limit.utf8))
        var levels = 0
        while case .array(let inner) = value { levels += 1; value = inner.first ?? .null }
        #expect(levels == 512)
    }

    @Test("where Go differs from JSONDecoder, Go's reading: invalid UTF-8 and lone surrogates are U+FFFD, a repeated key keeps the last value")
    func goLeniency() throws {
        var bytes = Array(#"{"a":"x"#.utf8)
        bytes += [0xFF, 0xC3]
        bytes += Array(#"y","b":"\ud800z","c":"\udc00","d":1,"d":2}"#.utf8)
        let value = try JSONValue.parse(json: bytes)
        #expect(value["a"] == .string("x\u{FFFD}\u{FFFD}y"))
        #expect(value["b"] == .string("\u{FFFD}z"))
        #expect(value["c"] == .string("\u{FFFD}"))
        #expect(value["d"] == .number(2))
    }

    @Test("a Kubernetes object round-trips: parse(jsonData()) is the same value")
    func roundTrip() throws {
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "web-0", "labels": ["app": "web"], "annotations": ["note": "line\nbreak \"quoted\" é"]],
            "spec": ["containers": [["name": "app", "image": "shop/app:1", "ports": [["containerPort": 8000]], "args": ["--x=1.5"]]]],
            "status": ["phase": "Running", "conditions": [["type": "Ready", "status": "True"]], "podIP": "10.244.1.7"],
        ]
        #expect(try JSONValue.parse(json: try pod.jsonData()) == pod)
    }
}
