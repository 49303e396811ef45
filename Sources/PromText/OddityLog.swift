/// Collects oddities up to a cap and counts the rest, so memory stays bounded on pathological input.
struct OddityLog {
    static let defaultLimit = 1000
    let limit: Int
    private(set) var recorded: [ParseOddity] = []
    private(set) var suppressed = 0

    init(limit: Int = OddityLog.defaultLimit) {
        self.limit = limit
    }

    mutating func record(_ kind: ParseOddity.Kind, family: String, line: Int, _ message: @autoclosure () -> String) {
        guard recorded.count < limit else {
            suppressed += 1
            return
        }
        recorded.append(ParseOddity(kind: kind, family: family, line: line, message: message()))
    }
}
