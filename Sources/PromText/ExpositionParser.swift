#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A streaming parser for Prometheus text format 0.0.4 and OpenMetrics 1.0.
///
/// Feed bytes in chunks of any size (a chunk may end in the middle of a line or of a UTF-8 sequence) with
/// `consume(_:)`, then call `finish()`. Only an incomplete last line is buffered, so memory grows with the parsed
/// families, not with the chunking. A parser is single-use; after an error every call rethrows that error.
///
/// - Text mode is lenient where Prometheus would still scrape and records `ParseOddity`s instead of failing.
/// - OpenMetrics mode is strict: it gets every verdict of the OpenMetrics conformance corpus right.
public struct ExpositionParser {
    /// Lines longer than this are rejected, which bounds the buffer kept between chunks.
    public static let maximumLineLength = 1 << 20

    public let format: ExpositionFormat
    private var reader: LineReader
    private var text = TextAssembler()
    private var openMetrics = OpenMetricsAssembler()
    /// The incomplete line carried over from the previous chunk.
    private var carry: [UInt8] = []
    /// Lines fully read so far.
    private var lineNumber = 0
    private var failure: ParseError?
    private var finished = false

    /// - Parameter format: the wire format of the whole input (see `FormatDetection`).
    public init(format: ExpositionFormat) {
        self.format = format
        reader = LineReader(format: format)
    }

    /// Parses the complete lines in `chunk` and keeps an incomplete last line for the next call.
    /// - Throws: `ParseError` with the 1-based line and byte column of the first problem.
    public mutating func consume(_ chunk: UnsafeRawBufferPointer) throws(ParseError) {
        try guarded { (parser: inout ExpositionParser) throws(ParseError) in try parser.consumeChunk(chunk) }
    }

    /// Parses the complete lines in `chunk` and keeps an incomplete last line for the next call.
    /// - Throws: `ParseError` with the 1-based line and byte column of the first problem.
    public mutating func consume(_ chunk: [UInt8]) throws(ParseError) {
        // `Array.withUnsafeBytes` only rethrows untyped errors, so the typed error is carried out by hand.
        var thrown: ParseError?
        chunk.withUnsafeBytes { bytes in
            do throws(ParseError) { try consume(bytes) } catch { thrown = error }
        }
        if let thrown { throw thrown }
    }

    /// Ends the input. In text mode a last line without "\n" is parsed like any other; in OpenMetrics mode the
    /// input must have ended with "# EOF" (its "\n" is optional).
    /// - Returns: the families in order of first appearance, and (text mode) the oddities found.
    /// - Throws: `ParseError` for the last line, a family-level rule, or a missing `# EOF`.
    public mutating func finish() throws(ParseError) -> Exposition {
        try guarded { (parser: inout ExpositionParser) throws(ParseError) in try parser.finishInput() }
    }

    /// Parses a whole input at once.
    public static func parse(_ bytes: [UInt8], format: ExpositionFormat) throws(ParseError) -> Exposition {
        var parser = ExpositionParser(format: format)
        try parser.consume(bytes)
        return try parser.finish()
    }

    /// Parses a whole input at once.
    public static func parse(_ text: String, format: ExpositionFormat) throws(ParseError) -> Exposition {
        try parse(Array(text.utf8), format: format)
    }

    // MARK: Internals

    /// Runs `body`, remembering its error so that later calls fail the same way.
    private mutating func guarded<T>(_ body: (inout ExpositionParser) throws(ParseError) -> T) throws(ParseError) -> T {
        if let failure { throw failure }
        if finished {
            throw ParseError(line: lineNumber, column: 1, reason: "the parser was already finished; create a new one")
        }
        do throws(ParseError) {
            return try body(&self)
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func consumeChunk(_ chunk: UnsafeRawBufferPointer) throws(ParseError) {
        guard let raw = chunk.baseAddress, chunk.count > 0 else { return }
        // Input is bytes (from [UInt8], Data or a network buffer) and is only ever read as UInt8.
        let base = raw.assumingMemoryBound(to: UInt8.self)
        let count = chunk.count
        var start = 0
        while start < count {
            guard let found = memchr(base + start, 0x0A, count - start) else {
                guard carry.count + (count - start) <= Self.maximumLineLength else { throw lineTooLong() }
                carry.append(contentsOf: UnsafeBufferPointer(start: base + start, count: count - start))
                return
            }
            let end = UnsafeRawPointer(found) - UnsafeRawPointer(base)
            if carry.isEmpty {
                try processLine(base + start, end - start)
            } else {
                guard carry.count + (end - start) <= Self.maximumLineLength else { throw lineTooLong() }
                carry.append(contentsOf: UnsafeBufferPointer(start: base + start, count: end - start))
                var line = carry
                carry = []
                try line.withUnsafeBufferPointer { (bytes: UnsafeBufferPointer<UInt8>) throws(ParseError) in
                    try processLine(bytes.baseAddress!, bytes.count)
                }
                line.removeAll(keepingCapacity: true)
                carry = line
            }
            start = end + 1
        }
    }

    private mutating func finishInput() throws(ParseError) -> Exposition {
        finished = true
        if !carry.isEmpty {
            let line = carry
            carry = []
            try line.withUnsafeBufferPointer { (bytes: UnsafeBufferPointer<UInt8>) throws(ParseError) in
                try processLine(bytes.baseAddress!, bytes.count)
            }
        }
        switch format {
        case .text: return text.finish()
        case .openMetrics: return try openMetrics.finish(lastLine: lineNumber)
        }
    }

    private mutating func processLine(_ start: UnsafePointer<UInt8>, _ length: Int) throws(ParseError) {
        // Checked before counting the line: `lineTooLong` names the line being read as `lineNumber + 1`, as the
        // chunked path (which rejects while buffering) does.
        if length > Self.maximumLineLength { throw lineTooLong() }
        lineNumber += 1
        if format == .openMetrics && openMetrics.sawEOF {
            throw ParseError(line: lineNumber, column: 1, reason: "text after '# EOF' (it must be the last line)")
        }
        // OpenMetrics allows NUL inside HELP text and label values; text mode treats it as binary garbage.
        if let problem = ByteChecks.firstProblem(start, length, rejectNUL: format == .text) {
            throw ParseError(line: lineNumber, column: problem.offset + 1, reason: problem.reason)
        }
        let content = try reader.read(start, length, line: lineNumber)
        switch format {
        case .text: try text.add(content, sample: reader.sample, line: lineNumber, columns: reader.labelColumns)
        case .openMetrics:
            try openMetrics.add(content, sample: reader.sample, line: lineNumber, columns: reader.labelColumns,
                                pairHashes: reader.labelPairHashes)
        }
    }

    private func lineTooLong() -> ParseError {
        ParseError(line: lineNumber + 1, column: Self.maximumLineLength + 1,
                   reason: "line is longer than \(Self.maximumLineLength) bytes (truncated or binary input?)")
    }
}
