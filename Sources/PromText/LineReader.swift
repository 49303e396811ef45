/// The grammar of one line: bytes in, a `LineContent` or a located `ParseError` out.
///
/// Text mode follows expfmt (blanks and tabs between tokens, generic `#` comments, strict escapes); OpenMetrics
/// mode follows the OpenMetrics 1.0 ABNF (single spaces, no comments, `# EOF`, exemplars). Both accept quoted
/// UTF-8 metric and label names (`{"my.metric","my.label"="v"}`). Family-level rules live in the assemblers.

/// What one line says. A sample is not carried in the case but left in `LineReader.sample`, so the large
/// struct is not copied from enum to enum on every line.
enum LineContent {
    /// A blank line or a comment (text mode only).
    case skip
    case metadata(Metadata)
    /// A sample, now in `LineReader.sample`.
    case sample
    /// OpenMetrics `# EOF`.
    case eof
}

struct Metadata {
    enum Keyword: String { case help = "HELP", type = "TYPE", unit = "UNIT" }
    var keyword: Keyword
    var name: String
    /// Unescaped HELP text, or the TYPE / UNIT token as written.
    var text: String
    /// 1-based columns of the name and of the text, for errors.
    var nameColumn: Int
    var textColumn: Int
}

/// A sample as read from one line, before it is assigned to a family.
struct RawSample {
    var name: String
    /// Hash of the name's bytes.
    var nameHash: UInt64
    var labels: [Label]
    /// Hash of name and label set, independent of label order (for duplicate detection).
    var seriesHash: UInt64
    /// Order-independent hash of the label set alone: the sum of `labelPairHashes` (so one label's share can be
    /// subtracted to get the hash of the set without it).
    var labelsHash: UInt64
    var value: Double
    var timestamp: Double?
    var exemplar: Exemplar?
    var valueColumn: Int
    var timestampColumn: Int
    var exemplarColumn: Int
    /// Index in `labels` of the `le` and `quantile` labels, if present (found by hash while reading).
    var leIndex = -1
    var quantileIndex = -1
    /// The floats the `le` and `quantile` values spell, read from the line's bytes (nil: absent or not a float).
    var leBound: Double?
    var quantileBound: Double?

    static let none = RawSample(
        name: "", nameHash: 0, labels: [], seriesHash: 0, labelsHash: 0, value: 0, timestamp: nil, exemplar: nil, valueColumn: 0,
        timestampColumn: 0, exemplarColumn: 0)

    /// The 1-based column of label `name`'s value, given the reader's `labelColumns` for this sample.
    func column(ofLabel name: String, columns: [Int]) -> Int {
        if let index = labels.firstIndex(where: { $0.name == name }), index < columns.count { return columns[index] }
        return 1
    }
}

struct LineReader {
    let format: ExpositionFormat
    /// The sample of the last line that was one.
    private(set) var sample = RawSample.none
    /// Label value columns (1-based) of the last sample read, parallel to its labels (the first `labels.count`
    /// entries are valid; the array is reused between lines).
    private(set) var labelColumns: [Int] = []
    private var interner = StringInterner()
    private var scratch: [UInt8] = []
    /// The labels of the label set being read (reused between lines), and the arrays samples share.
    private var scratchLabels: [Label] = []
    private var labelSets = LabelSetTable()
    /// Hashes of the label names the grammar and the assemblers treat specially (same hash as the interner's).
    private let leHash = hashWords(loadWords("le", 2), 2)
    private let quantileHash = hashWords(loadWords("quantile", 8), 8)
    private let reservedNameHash = hashWords(loadWords("__name__", 8), 8)
    private var leIndex = -1
    private var quantileIndex = -1
    private var leBound: Double?
    private var quantileBound: Double?
    /// The last unquoted metric name read, as bytes and as its token.
    private var previousName: [UInt8] = []
    private var previousNameToken: (string: String, hash: UInt64) = ("", 0)
    /// Per label of the last sample: the hash of its name and value (parallel to `labelColumns`).
    private(set) var labelPairHashes: [UInt64] = []
    /// Hashes of the label names read so far on this line (duplicate check without string comparison); like
    /// `labelColumns`, only the first `labels.count` entries are valid.
    private var labelNameHashes: [UInt64] = []

    init(format: ExpositionFormat) {
        self.format = format
    }

    mutating func read(_ p: UnsafePointer<UInt8>, _ n: Int, line: Int) throws(ParseError) -> LineContent {
        var c = Cursor(p: p, n: n, line: line)
        switch format {
        case .text: return try readTextLine(&c)
        case .openMetrics: return try readOpenMetricsLine(&c)
        }
    }

    // MARK: Text format 0.0.4

    private mutating func readTextLine(_ c: inout Cursor) throws(ParseError) -> LineContent {
        if c.n > 0 && c.p[c.n - 1] == UInt8(ascii: "\r") {
            throw c.error("carriage return at end of line (CRLF line endings are not allowed)", at: c.n - 1)
        }
        c.skipBlanks()
        if c.atEnd { return .skip }
        if c.byte == UInt8(ascii: "#") { return try readTextComment(&c) }
        sample = try readTextSample(&c)
        return .sample
    }

    private mutating func readTextComment(_ c: inout Cursor) throws(ParseError) -> LineContent {
        c.i += 1
        c.skipBlanks()
        let keywordStart = c.i
        while !c.atEnd && c.byte != UInt8(ascii: " ") && c.byte != UInt8(ascii: "\t") { c.i += 1 }
        let keyword: Metadata.Keyword
        switch c.text(keywordStart, c.i) {
        case "HELP": keyword = .help
        case "TYPE": keyword = .type
        default: return .skip  // a plain comment
        }
        c.skipBlanks()
        if c.atEnd { return .skip }  // "# HELP" alone: expfmt ignores it too
        let nameColumn = c.i + 1
        let name = try readMetricName(&c).string
        if !c.atEnd && c.byte != UInt8(ascii: " ") && c.byte != UInt8(ascii: "\t") {
            throw c.error("invalid character \(c.found) in metric name \"\(name)\" in # \(keyword.rawValue) line")
        }
        c.skipBlanks()
        let textColumn = c.i + 1
        switch keyword {
        case .help:
            return .metadata(Metadata(keyword: .help, name: name, text: try readHelpText(&c, strict: true),
                                      nameColumn: nameColumn, textColumn: textColumn))
        default:
            var end = c.n
            while end > c.i && (c.p[end - 1] == UInt8(ascii: " ") || c.p[end - 1] == UInt8(ascii: "\t")) { end -= 1 }
            return .metadata(Metadata(keyword: keyword, name: name, text: c.text(c.i, end),
                                      nameColumn: nameColumn, textColumn: textColumn))
        }
    }

    private mutating func readTextSample(_ c: inout Cursor) throws(ParseError) -> RawSample {
        var name: (string: String, hash: UInt64)?
        if c.byte != UInt8(ascii: "{") {
            name = try readMetricName(&c)
            if !c.atEnd && c.byte != UInt8(ascii: " ") && c.byte != UInt8(ascii: "\t") && c.byte != UInt8(ascii: "{") {
                throw c.error("invalid character \(c.found) in metric name \"\(name!.string)\"")
            }
            c.skipBlanks()
        }
        var labels: [Label] = []
        var labelsHash: UInt64 = 0
        leIndex = -1
        quantileIndex = -1
        leBound = nil
        quantileBound = nil
        if !c.atEnd && c.byte == UInt8(ascii: "{") {
            try readLabels(&c, into: &labels, hash: &labelsHash, metricName: &name, strict: false)
            c.skipBlanks()
        }
        guard let name else {
            throw c.error("sample has no metric name (write it before '{' or quoted inside the braces)", at: 0)
        }
        if c.atEnd { throw c.error("expected a value after \"\(name.string)\", found end of line") }
        let valueStart = c.i
        c.skip { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
        guard let value = NumberSyntax.parseFloat(c.p + valueStart, c.i - valueStart) else {
            throw c.error("expected a float value for \"\(name.string)\", found \"\(c.text(valueStart, c.i))\"",
                          at: valueStart)
        }
        c.skipBlanks()
        var timestamp: Double?
        let timestampStart = c.i
        if !c.atEnd {
            if c.byte == UInt8(ascii: "#") {
                throw c.error("exemplars ('# {...}') are only allowed in OpenMetrics, not in text format 0.0.4")
            }
            while !c.atEnd && c.byte != UInt8(ascii: " ") && c.byte != UInt8(ascii: "\t") { c.i += 1 }
            guard let milliseconds = NumberSyntax.parseInt64(c.p + timestampStart, c.i - timestampStart) else {
                throw c.error("expected an integer timestamp in milliseconds, found \"\(c.text(timestampStart, c.i))\"",
                              at: timestampStart)
            }
            timestamp = Double(milliseconds) / 1000
            c.skipBlanks()
            if !c.atEnd { throw c.error("unexpected text after the timestamp: \"\(c.text(c.i, c.n))\"") }
        }
        return RawSample(
            name: name.string, nameHash: name.hash, labels: labels, seriesHash: combineHashes(name.hash, labelsHash),
            labelsHash: labelsHash,
            value: value, timestamp: timestamp, exemplar: nil, valueColumn: valueStart + 1, timestampColumn: timestampStart + 1,
            exemplarColumn: 0, leIndex: leIndex, quantileIndex: quantileIndex,
            leBound: leBound, quantileBound: quantileBound)
    }

    // MARK: OpenMetrics 1.0

    private mutating func readOpenMetricsLine(_ c: inout Cursor) throws(ParseError) -> LineContent {
        if c.atEnd { throw c.error("blank line (OpenMetrics allows none; the input must end with '# EOF')") }
        if c.byte == UInt8(ascii: "#") { return try readOpenMetricsMetadata(&c) }
        sample = try readOpenMetricsSample(&c)
        return .sample
    }

    private mutating func readOpenMetricsMetadata(_ c: inout Cursor) throws(ParseError) -> LineContent {
        if c.text(0, c.n) == "# EOF" { return .eof }
        guard c.n >= 2, c.p[1] == UInt8(ascii: " ") else {
            throw c.error("expected '# HELP', '# TYPE', '# UNIT' or '# EOF' (OpenMetrics has no comments)", at: 1)
        }
        c.i = 2
        let keywordStart = c.i
        while !c.atEnd && c.byte != UInt8(ascii: " ") { c.i += 1 }
        guard let keyword = Metadata.Keyword(rawValue: c.text(keywordStart, c.i)) else {
            throw c.error("unknown metadata keyword \"\(c.text(keywordStart, c.i))\" (expected HELP, TYPE or UNIT)",
                          at: keywordStart)
        }
        guard !c.atEnd else { throw c.error("expected a space and a metric name after # \(keyword.rawValue)") }
        c.i += 1
        let nameColumn = c.i + 1
        if c.atEnd { throw c.error("expected a metric name after # \(keyword.rawValue), found end of line") }
        let name = try readMetricName(&c).string
        guard !c.atEnd, c.byte == UInt8(ascii: " ") else {
            throw c.error("expected a space after metric name \"\(name)\" in # \(keyword.rawValue), found \(c.found)")
        }
        c.i += 1
        let textColumn = c.i + 1
        let text = keyword == .help ? try readHelpText(&c, strict: false) : c.text(c.i, c.n)
        return .metadata(Metadata(keyword: keyword, name: name, text: text, nameColumn: nameColumn,
                                  textColumn: textColumn))
    }

    private mutating func readOpenMetricsSample(_ c: inout Cursor) throws(ParseError) -> RawSample {
        var name: (string: String, hash: UInt64)?
        if c.byte != UInt8(ascii: "{") {
            name = try readMetricName(&c)
            if !c.atEnd && c.byte != UInt8(ascii: " ") && c.byte != UInt8(ascii: "{") {
                throw c.error("invalid character \(c.found) in metric name \"\(name!.string)\"")
            }
        }
        var labels: [Label] = []
        var labelsHash: UInt64 = 0
        leIndex = -1
        quantileIndex = -1
        leBound = nil
        quantileBound = nil
        if !c.atEnd && c.byte == UInt8(ascii: "{") {
            try readLabels(&c, into: &labels, hash: &labelsHash, metricName: &name, strict: true)
        }
        guard let name else {
            throw c.error("sample has no metric name (write it before '{' or quoted inside the braces)", at: 0)
        }
        guard !c.atEnd, c.byte == UInt8(ascii: " ") else {
            throw c.error("expected a single space and a value after \"\(name.string)\", found \(c.found)")
        }
        c.i += 1
        let valueStart = c.i
        let value = try readOpenMetricsNumber(&c, what: "value", special: true)
        var timestamp: Double?
        let timestampStart = c.i + 1
        var exemplar: Exemplar?
        var exemplarStart = 0
        if !c.atEnd {
            c.i += 1  // the space
            if c.atEnd { throw c.error("trailing space after the value") }
            if c.byte != UInt8(ascii: "#") {
                timestamp = try readOpenMetricsNumber(&c, what: "timestamp", special: false)
                if !c.atEnd {
                    c.i += 1
                    if c.atEnd { throw c.error("trailing space after the timestamp") }
                    guard c.byte == UInt8(ascii: "#") else {
                        throw c.error("expected '# {' to start an exemplar after the timestamp, found \(c.found)")
                    }
                }
            }
            if !c.atEnd {
                exemplarStart = c.i
                exemplar = try readExemplar(&c)
            }
        }
        return RawSample(
            name: name.string, nameHash: name.hash, labels: labels, seriesHash: combineHashes(name.hash, labelsHash),
            labelsHash: labelsHash,
            value: value, timestamp: timestamp, exemplar: exemplar, valueColumn: valueStart + 1, timestampColumn: timestampStart + 1,
            exemplarColumn: exemplarStart + 1, leIndex: leIndex, quantileIndex: quantileIndex,
            leBound: leBound, quantileBound: quantileBound)
    }

    /// `# {labels} value [timestamp]`, the cursor on the '#'.
    private mutating func readExemplar(_ c: inout Cursor) throws(ParseError) -> Exemplar {
        let start = c.i
        guard c.i + 2 < c.n, c.p[c.i + 1] == UInt8(ascii: " "), c.p[c.i + 2] == UInt8(ascii: "{") else {
            throw c.error("expected '# {' to start an exemplar", at: start)
        }
        c.i += 2
        // The exemplar's labels reuse the per-line label state; keep the sample's, all three parallel arrays of it,
        // also when the exemplar is malformed. (Restoring only two let an exemplar with more labels than the sample
        // leave `labelNameHashes` longer than `labelColumns`: the next sample's labels indexed past the end — found
        // by FuzzPromText.)
        let saved = (labelColumns, labelPairHashes, labelNameHashes, leIndex, quantileIndex, leBound, quantileBound)
        defer { (labelColumns, labelPairHashes, labelNameHashes, leIndex, quantileIndex, leBound, quantileBound) = saved }
        var labels: [Label] = []
        var hash: UInt64 = 0
        var noName: (string: String, hash: UInt64)? = ("", 0)  // a name inside exemplar braces is not allowed
        try readLabels(&c, into: &labels, hash: &hash, metricName: &noName, strict: true, share: false)
        let length = labels.reduce(0) { $0 + ByteChecks.codePointCount($1.name) + ByteChecks.codePointCount($1.value) }
        if length > 128 {
            throw c.error("exemplar label set has \(length) code points; OpenMetrics allows at most 128", at: start)
        }
        guard !c.atEnd, c.byte == UInt8(ascii: " ") else {
            throw c.error("expected a space and a value after the exemplar labels, found \(c.found)")
        }
        c.i += 1
        let value = try readOpenMetricsNumber(&c, what: "exemplar value", special: true)
        var timestamp: Double?
        if !c.atEnd {
            c.i += 1
            if c.atEnd { throw c.error("trailing space after the exemplar value") }
            timestamp = try readOpenMetricsNumber(&c, what: "exemplar timestamp", special: false)
            if !c.atEnd { throw c.error("unexpected text after the exemplar timestamp: \"\(c.text(c.i, c.n))\"") }
        }
        return Exemplar(labels: labels, value: value, timestamp: timestamp)
    }

    /// A number token up to the next space or the end of the line.
    private func readOpenMetricsNumber(_ c: inout Cursor, what: String, special: Bool) throws(ParseError) -> Double {
        let start = c.i
        c.skip { $0 != UInt8(ascii: " ") }
        let parsed = special
            ? NumberSyntax.parseFloat(c.p + start, c.i - start) : NumberSyntax.parseRealNumber(c.p + start, c.i - start)
        guard let parsed, special || parsed.isFinite else {
            if start == c.i { throw c.error("expected a \(what), found \(c.found)") }
            throw c.error("invalid \(what) \"\(c.text(start, c.i))\"", at: start)
        }
        return parsed
    }

    // MARK: Shared tokens

    /// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*` or a quoted UTF-8 string.
    private mutating func readMetricName(_ c: inout Cursor) throws(ParseError) -> (string: String, hash: UInt64) {
        if c.byte == UInt8(ascii: "\"") {
            let start = c.i
            let name = try readQuoted(&c, strictEscapes: true, what: .metricName)
            if name.string.isEmpty { throw c.error("empty quoted metric name", at: start) }
            return name
        }
        let start = c.i
        guard isMetricNameStart(c.byte) else { throw c.error("expected a metric name, found \(c.found)") }
        // Most lines repeat the previous line's name: compare against it before scanning byte by byte.
        let previous = previousName.count
        if previous > 0 && c.n - start > previous
            && !isMetricNameChar(c.p[start + previous])
            && previousName.withUnsafeBufferPointer({ memoryEqual($0.baseAddress!, c.p + start, previous) }) {
            c.i = start + previous
            return previousNameToken
        }
        c.i += 1
        c.skip(class: ByteClass.metricName)
        let token = interner.intern(c.p + start, c.i - start, position: 0)
        previousName.removeAll(keepingCapacity: true)
        previousName.append(contentsOf: UnsafeBufferPointer(start: c.p + start, count: c.i - start))
        previousNameToken = token
        return token
    }

    /// `{name="value",...}` with the cursor on '{'; leaves the cursor after '}'. `strict` is OpenMetrics: no
    /// blanks, no trailing comma, unknown escapes kept as written. A quoted term without '=' is the metric name
    /// when `metricName` is still nil. A sample's labels (`share`) come from `labelSets`; an exemplar's get their
    /// own array.
    private mutating func readLabels(
        _ c: inout Cursor, into labels: inout [Label], hash: inout UInt64,
        metricName: inout (string: String, hash: UInt64)?, strict: Bool, share: Bool = true
    ) throws(ParseError) {
        let open = c.i
        c.i += 1
        scratchLabels.removeAll(keepingCapacity: true)
        var orderedHash: UInt64 = 0  // unlike `hash`, depends on the order (the shared array must match exactly)
        var afterComma = false
        while true {
            if !strict { c.skipBlanks() }
            if c.atEnd { throw c.error("label set opened at column \(open + 1) is not closed: expected '}'") }
            if c.byte == UInt8(ascii: "}") {
                if strict && afterComma { throw c.error("trailing comma before '}' in label set", at: c.i - 1) }
                c.i += 1
                break
            }
            let nameStart = c.i
            let labelName: (string: String, hash: UInt64)
            let quoted = c.byte == UInt8(ascii: "\"")
            if quoted {
                labelName = try readQuoted(&c, strictEscapes: true, what: .labelName)
            } else {
                guard isLetterOrUnderscore(c.byte) else {
                    throw c.error(afterComma && c.byte == UInt8(ascii: ",")
                        ? "two commas in a row in label set" : "expected a label name, found \(c.found)")
                }
                c.i += 1
                c.skip(class: ByteClass.labelName)
                labelName = interner.intern(c.p + nameStart, c.i - nameStart, position: 1 + 2 * scratchLabels.count)
            }
            if !strict { c.skipBlanks() }
            if c.atEnd || c.byte != UInt8(ascii: "=") {
                if quoted && metricName == nil && scratchLabels.isEmpty
                    && !c.atEnd && (c.byte == UInt8(ascii: ",") || c.byte == UInt8(ascii: "}")) {
                    if labelName.string.isEmpty { throw c.error("empty quoted metric name", at: nameStart) }
                    metricName = labelName
                    if c.byte == UInt8(ascii: ",") { c.i += 1; afterComma = true } else { afterComma = false }
                    continue
                }
                throw c.error("expected '=' after label name \"\(labelName.string)\", found \(c.found)")
            }
            c.i += 1
            if !strict { c.skipBlanks() }
            guard !c.atEnd, c.byte == UInt8(ascii: "\"") else {
                throw c.error("expected '\"' to start the value of label \"\(labelName.string)\", found \(c.found)")
            }
            let valueColumn = c.i + 1
            let valueQuote = c.i
            let value = try readQuoted(&c, strictEscapes: !strict, what: .labelValue(labelName.string),
                                       position: 2 + 2 * scratchLabels.count)
            if labelName.hash == reservedNameHash && labelName.string == "__name__" {
                throw c.error("label name \"__name__\" is reserved (the metric name goes before '{')", at: nameStart)
            }
            let k = scratchLabels.count
            let pairHash = combineHashes(labelName.hash, value.hash)
            for earlier in 0..<k where labelNameHashes[earlier] == labelName.hash && scratchLabels[earlier].name == labelName.string {
                throw c.error("duplicate label name \"\(labelName.string)\"", at: nameStart)
            }
            if k < labelNameHashes.count {
                labelNameHashes[k] = labelName.hash
                labelColumns[k] = valueColumn
                labelPairHashes[k] = pairHash
            } else {
                labelNameHashes.append(labelName.hash)
                labelColumns.append(valueColumn)
                labelPairHashes.append(pairHash)
            }
            if labelName.hash == leHash && labelName.string == "le" {
                leIndex = k
                leBound = Self.float(in: c, quotedAt: valueQuote, value: value.string)
            }
            if labelName.hash == quantileHash && labelName.string == "quantile" {
                quantileIndex = k
                quantileBound = Self.float(in: c, quotedAt: valueQuote, value: value.string)
            }
            hash = hash &+ pairHash
            orderedHash = combineHashes(orderedHash, pairHash)
            if !strict { c.skipBlanks() }
            guard !c.atEnd, c.byte == UInt8(ascii: ",") || c.byte == UInt8(ascii: "}") else {
                throw c.error("expected ',' or '}' after the value of label \"\(labelName.string)\", found \(c.found)")
            }
            afterComma = c.byte == UInt8(ascii: ",")
            if afterComma { c.i += 1 }
            // Last use of both tokens: their strings move into the label.
            scratchLabels.append(Label(name: labelName.string, value: value.string))
        }
        guard share else {
            labels = takeScratchLabels()
            return
        }
        let (shared, slot) = labelSets.find(scratchLabels, fingerprint: orderedHash)
        if let shared {
            labels = shared
        } else {
            labels = takeScratchLabels()
            labelSets.insert(labels, fingerprint: orderedHash, at: slot)
        }
    }

    /// The scratch labels handed over as an array of their own, without copying them: the scratch starts a new
    /// buffer sized like this set. (Handing over a copy made with `Array(scratchLabels)` shares the buffer, and the
    /// next `removeAll(keepingCapacity:)` then reallocates at the widest line's capacity for every later set.)
    private mutating func takeScratchLabels() -> [Label] {
        let taken = scratchLabels
        scratchLabels = []
        scratchLabels.reserveCapacity(taken.count)
        return taken
    }

    /// The float a label value just read spells, parsed from its bytes on the line (the cursor is after the
    /// closing quote). A value whose bytes are longer than its text had escapes, and no float has any.
    private static func float(in c: Cursor, quotedAt quote: Int, value: String) -> Double? {
        let length = c.i - quote - 2
        guard length > 0, length == value.utf8.count else { return nil }
        return NumberSyntax.parseFloat(c.p + quote + 1, length)
    }

    /// A double-quoted string with the cursor on the opening quote; leaves the cursor after the closing quote.
    /// Escapes `\\`, `\n`, `\"`; any other escape is an error when `strictEscapes`, else kept as written.
    /// What a quoted string is, for error messages (built only when an error is thrown).
    private enum Quoted {
        case metricName, labelName
        case labelValue(String)

        var description: String {
            switch self {
            case .metricName: return "metric name"
            case .labelName: return "label name"
            case .labelValue(let label): return "value of label \"\(label)\""
            }
        }
    }

    private mutating func readQuoted(
        _ c: inout Cursor, strictEscapes: Bool, what: Quoted, position: Int = -1
    ) throws(ParseError) -> (string: String, hash: UInt64) {
        let open = c.i
        c.i += 1
        let start = c.i
        c.skipToQuoteOrBackslash()
        if !c.atEnd && c.byte == UInt8(ascii: "\"") {
            let result = interner.intern(c.p + start, c.i - start, position: position)
            c.i += 1
            return result
        }
        if c.atEnd { throw unterminated(c, open: open, what: what) }
        // Slow path: unescape into the scratch buffer.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: c.p + start, count: c.i - start))
        while !c.atEnd {
            let b = c.byte
            if b == UInt8(ascii: "\"") {
                c.i += 1
                if scratch.isEmpty { return interner.intern(c.p, 0) }
                return scratch.withUnsafeBufferPointer { interner.intern($0.baseAddress!, $0.count) }
            }
            if b == UInt8(ascii: "\\") {
                guard c.i + 1 < c.n else { break }
                let escaped = c.p[c.i + 1]
                switch escaped {
                case UInt8(ascii: "\\"), UInt8(ascii: "\""): scratch.append(escaped)
                case UInt8(ascii: "n"): scratch.append(UInt8(ascii: "\n"))
                default:
                    if strictEscapes {
                        throw c.error("invalid escape sequence '\\\(Character(Unicode.Scalar(escaped)))' in \(what.description) "
                            + "(only \\\\, \\\" and \\n are allowed)")
                    }
                    scratch.append(b)
                    scratch.append(escaped)
                }
                c.i += 2
                continue
            }
            scratch.append(b)
            c.i += 1
        }
        throw unterminated(c, open: open, what: what)
    }

    private func unterminated(_ c: Cursor, open: Int, what: Quoted) -> ParseError {
        c.error("\(what.description) opened with '\"' at column \(open + 1) is not closed before the end of the line "
            + "(a raw newline inside a quoted string is not allowed)", at: c.n)
    }

    /// The rest of the line as HELP text. Text format: `\\`, `\n` (and `\"`) only; OpenMetrics keeps other
    /// escapes as written.
    private mutating func readHelpText(_ c: inout Cursor, strict: Bool) throws(ParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        while !c.atEnd {
            let b = c.byte
            if b == UInt8(ascii: "\\") {
                guard c.i + 1 < c.n else {
                    if strict { throw c.error("HELP text ends with a lone backslash") }
                    scratch.append(b)
                    c.i += 1
                    break
                }
                let escaped = c.p[c.i + 1]
                switch escaped {
                case UInt8(ascii: "\\"), UInt8(ascii: "\""): scratch.append(escaped)
                case UInt8(ascii: "n"): scratch.append(UInt8(ascii: "\n"))
                default:
                    if strict {
                        throw c.error("invalid escape sequence '\\\(Character(Unicode.Scalar(escaped)))' in HELP text "
                            + "(only \\\\ and \\n are allowed)")
                    }
                    scratch.append(b)
                    scratch.append(escaped)
                }
                c.i += 2
                continue
            }
            scratch.append(b)
            c.i += 1
        }
        return scratch.isEmpty ? "" : scratch.withUnsafeBufferPointer { makeString($0.baseAddress!, $0.count) }
    }
}
