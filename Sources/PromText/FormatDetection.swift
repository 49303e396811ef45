/// Decides which wire format an input is in.
public enum FormatDetection {
    /// The format named by an HTTP `Content-Type`.
    /// - Returns: `.openMetrics` for `application/openmetrics-text`, `.text` for `text/plain` (any version),
    ///   nil for anything else (the caller reports "unknown Content-Type"). Media types are case-insensitive.
    public static func format(forContentType contentType: String) -> ExpositionFormat? {
        let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first
            .map { $0.trimmingASCIIWhitespace().lowercased() } ?? ""
        switch mediaType {
        case "application/openmetrics-text": return .openMetrics
        case "text/plain": return .text
        default: return nil
        }
    }

    /// For files: `.openMetrics` when the last non-empty line is exactly `# EOF`, else `.text`.
    public static func sniff(_ bytes: [UInt8]) -> ExpositionFormat {
        var end = bytes.count
        while end > 0 && bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        var start = end
        while start > 0 && bytes[start - 1] != UInt8(ascii: "\n") { start -= 1 }
        return bytes[start..<end].elementsEqual("# EOF".utf8) ? .openMetrics : .text
    }
}

extension Substring {
    fileprivate func trimmingASCIIWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
