import Testing
import YAMLInput

/// "Billion laughs": each level repeats the previous one nine times, 9^levels scalars from a few hundred bytes.
func laughs(levels: Int, asKey: Bool = false) -> String {
    let names = (0..<levels).map { "l\($0)" }
    var lines = ["\(names[0]): &\(names[0]) [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for (previous, name) in zip(names, names.dropFirst()) {
        lines.append("\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]")
    }
    lines.append(asKey ? "? *\(names.last!)\n: value" : "all: *\(names.last!)")
    return lines.joined(separator: "\n") + "\n"
}

@Suite("YAMLBudget: size and alias expansion bounded before Yams composes")
struct YAMLBudgetTests {
    @Test("a billion laughs is refused, naming the line and the limit, as a value and as a mapping key", arguments: [false, true])
    func billionLaughs(asKey: Bool) throws {
        let yaml = laughs(levels: 9, asKey: asKey)
        #expect(yaml.utf8.count < 700)
        let error = try #require(throws: YAMLBudget.Exceeded.self) { try YAMLBudget.check(yaml) }
        #expect(error.description.contains("limit of 1000000 nodes"), "\(error)")
        #expect(error.description.hasPrefix("line "), "\(error)")
    }

    @Test("ordinary aliases within the budget pass; the count is of expanded nodes")
    func withinBudget() throws {
        try YAMLBudget.check("base: &b {image: redis, port: 6379}\none: *b\ntwo: *b\n")
        // 3 levels: 1,746 nodes with "all: *l2" expanded (820 for l2 itself); 4 levels: 15,866.
        try YAMLBudget.check(laughs(levels: 3), limits: .init(maxBytes: 1 << 20, maxNodes: 2_000))
        #expect(throws: YAMLBudget.Exceeded.self) {
            try YAMLBudget.check(laughs(levels: 4), limits: .init(maxBytes: 1 << 20, maxNodes: 2_000))
        }
    }

    @Test("input over the byte limit is refused before it is parsed")
    func tooLarge() throws {
        let error = try #require(throws: YAMLBudget.Exceeded.self) {
            try YAMLBudget.check(String(repeating: "a: b\n", count: 100), limits: .init(maxBytes: 100, maxNodes: 2_000))
        }
        #expect(error.description == "500 bytes of YAML, more than kverify's limit of 100 bytes")
    }

    @Test("syntax errors are left to Yams (it reports line and column)")
    func syntaxErrors() throws {
        try YAMLBudget.check("a: [unclosed\n*x: &\n")
        try YAMLBudget.check("a: *undefined\n")
    }
}
