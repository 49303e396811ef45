import Testing
import SPDY

/// The SPDY/3.1 pieces port-forward rests on, checked without kubectl (the acceptance tests drive them with it).
@Suite("SPDY framing and header compression")
struct SPDYTests {
    @Test("the header dictionary is SPDY/3's: 1423 bytes from the length-prefixed \"options\" to \"enq=0.\"")
    func dictionary() {
        #expect(SPDY.dictionary.count == 1423)
        #expect(Array(SPDY.dictionary.prefix(11)) == [0, 0, 0, 7] + Array("options".utf8))
        #expect(Array(SPDY.dictionary.suffix(6)) == Array("enq=0.".utf8))
    }

    @Test("header blocks survive compression both ways, each continuing the same zlib stream as SPDY requires")
    func headerRoundTrip() throws {
        let sender = SPDY.HeaderCodec(), receiver = SPDY.HeaderCodec()
        let blocks: [[(String, String)]] = [
            [("streamType", "error"), ("port", "8181"), ("requestID", "0")],
            [("streamType", "data"), ("port", "8181"), ("requestID", "0")],
            [],
        ]
        for block in blocks {
            let compressed = try sender.deflate(SPDY.encodeHeaders(block))
            let headers = try #require(SPDY.decodeHeaders(try receiver.inflate(compressed)))
            #expect(headers == Dictionary(uniqueKeysWithValues: block.map { ($0.0.lowercased(), $0.1) }))
        }
    }

    @Test("frames split at any byte come out whole and in order")
    func parserSplits() {
        let frames = SPDY.control(.ping, SPDY.uint32(7)) + SPDY.data(stream: 3, flags: SPDY.flagFin, Array("GET / HTTP/1.0\r\n\r\n".utf8))
            + SPDY.control(.rstStream, SPDY.uint32(3) + SPDY.uint32(SPDY.cancel))
        for split in 0...frames.count {
            var parser = SPDY.Parser()
            var seen: [SPDY.Frame] = []
            parser.append(frames[..<split])
            while let frame = parser.next() { seen.append(frame) }
            parser.append(frames[split...])
            while let frame = parser.next() { seen.append(frame) }
            #expect(seen == [
                .control(type: 6, flags: 0, payload: SPDY.uint32(7)),
                .data(stream: 3, flags: 1, payload: Array("GET / HTTP/1.0\r\n\r\n".utf8)),
                .control(type: 3, flags: 0, payload: SPDY.uint32(3) + SPDY.uint32(5)),
            ], "split at \(split)")
        }
    }
}
