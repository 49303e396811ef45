import PromText
import Testing

@Suite("Format detection")
struct FormatDetectionTests {
    @Test("Content-Type decides the format", arguments: [
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", ExpositionFormat.openMetrics),
        ("Application/OpenMetrics-Text", .openMetrics),
        ("text/plain; version=0.0.4; charset=utf-8", .text),
        ("text/plain", .text),
        (" text/plain ;version=0.0.4", .text),
    ])
    func known(_ contentType: String, _ format: ExpositionFormat) {
        #expect(FormatDetection.format(forContentType: contentType) == format)
    }

    @Test("anything else is unknown", arguments: ["application/json", "text/html; charset=utf-8", "", "application/vnd.google.protobuf"])
    func unknown(_ contentType: String) {
        #expect(FormatDetection.format(forContentType: contentType) == nil)
    }

    @Test("files are OpenMetrics when the last non-empty line is exactly # EOF", arguments: [
        ("a 1\n# EOF\n", ExpositionFormat.openMetrics),
        ("a 1\n# EOF", .openMetrics),
        ("a 1\n# EOF\n\n\n", .openMetrics),
        ("a 1\n", .text),
        ("# EOF\na 1\n", .text),
        ("a 1\n# EOF \n", .text),
        ("", .text),
    ])
    func sniff(_ input: String, _ format: ExpositionFormat) {
        #expect(FormatDetection.sniff(Array(input.utf8)) == format)
    }
}
