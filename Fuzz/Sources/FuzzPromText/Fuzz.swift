import PromText

/// Both formats, whole and in small chunks: a crash, a hang or a verdict that depends on chunking is a bug.
func fuzz(_ bytes: [UInt8]) {
    for format in [ExpositionFormat.text, .openMetrics] {
        let whole = (try? ExpositionParser.parse(bytes, format: format)) != nil
        var parser = ExpositionParser(format: format)
        var chunked = true
        do {
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + 3, bytes.count)
                try parser.consume(Array(bytes[offset..<end]))
                offset = end
            }
            _ = try parser.finish()
        } catch {
            chunked = false
        }
        precondition(whole == chunked, "verdict differs between whole and 3-byte chunks (\(format))")
    }
}
