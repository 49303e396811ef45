import RESP

/// Replies as a server might send them, whole and split byte by byte: same values, same errors, no crash.
func fuzz(_ bytes: [UInt8]) {
    func drain(_ parser: inout RESPParser) -> [String] {
        var values: [String] = []
        while true {
            do {
                guard let value = try parser.next() else { return values }
                values.append("\(value)")
            } catch {
                values.append("error")
                return values
            }
        }
    }
    var whole = RESPParser()
    whole.append(bytes)
    let expected = drain(&whole)
    var split = RESPParser()
    var seen: [String] = []
    for byte in bytes where seen.last != "error" {
        split.append([byte])
        seen += drain(&split)
    }
    precondition(seen.starts(with: expected) || expected.starts(with: seen), "values differ when fed byte by byte")
}
