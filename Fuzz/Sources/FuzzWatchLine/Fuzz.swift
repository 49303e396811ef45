import KubeClient

/// A watch body in two chunkings: the events delivered before any error must be the same.
func fuzz(_ bytes: [UInt8]) {
    func decode(chunk: Int) -> [String] {
        var decoder = WatchLineDecoder(maxLineBytes: 4096)
        var events: [String] = []
        do {
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                events += try decoder.feed(bytes[offset..<end]).map { "\($0.type.rawValue) \($0.object.count)" }
                offset = end
            }
            events += try decoder.finish().map { "\($0.type.rawValue) \($0.object.count)" }
        } catch {
            events.append("error")
        }
        return events
    }
    let whole = decode(chunk: max(bytes.count, 1))
    let small = decode(chunk: 5)
    precondition(whole == small, "events differ between one chunk and 5-byte chunks: \(whole) vs \(small)")
}
