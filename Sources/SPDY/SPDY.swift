import Foundation
internal import CZlib

/// SPDY/3.1 framing, the part port-forward uses: control frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING,
/// GOAWAY, HEADERS, WINDOW_UPDATE) and data frames; header blocks zlib-compressed with SPDY/3's dictionary.
/// A pure parser and encoder over bytes, shared by the sim's port-forward server (`PortForwardSession`) and the REST
/// backend's port-forward client (`KubeClient/PortForward.swift`).
package enum SPDY {
    package enum ControlType: UInt16 {
        case synStream = 1, synReply = 2, rstStream = 3, settings = 4, ping = 6, goAway = 7, headers = 8, windowUpdate = 9
    }

    package static let flagFin: UInt8 = 0x01
    /// RST_STREAM status codes used here.
    package static let protocolError: UInt32 = 1, cancel: UInt32 = 5

    package enum Frame: Equatable {
        case control(type: UInt16, flags: UInt8, payload: [UInt8])
        case data(stream: UInt32, flags: UInt8, payload: [UInt8])
    }

    /// Splits a byte stream into frames; keeps a partial frame until the rest arrives.
    package struct Parser {
        private var buffer: [UInt8] = []
        private var start = 0

        package init() {}

        package mutating func append(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

        package mutating func next() -> Frame? {
            guard buffer.count - start >= 8 else { return compact() }
            let header = buffer[start..<start + 8]
            let length = Int(header[start + 5]) << 16 | Int(header[start + 6]) << 8 | Int(header[start + 7])
            guard buffer.count - start >= 8 + length else { return compact() }
            let payload = Array(buffer[start + 8..<start + 8 + length])
            let flags = header[start + 4]
            let frame: Frame
            if header[start] & 0x80 != 0 {
                frame = .control(type: UInt16(header[start + 2]) << 8 | UInt16(header[start + 3]), flags: flags, payload: payload)
            } else {
                frame = .data(stream: readUInt32(Array(header), at: 0) & 0x7fff_ffff, flags: flags, payload: payload)
            }
            start += 8 + length
            return frame
        }

        private mutating func compact() -> Frame? {
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            return nil
        }
    }

    package static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        guard bytes.count >= offset + 4 else { return 0 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    package static func uint32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    package static func control(_ type: ControlType, flags: UInt8 = 0, _ payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [0x80, 0x03, UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xff), flags,
                UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + payload
    }

    package static func data(stream: UInt32, flags: UInt8 = 0, _ payload: some Collection<UInt8>) -> [UInt8] {
        let length = payload.count
        return uint32(stream & 0x7fff_ffff) + [flags, UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + payload
    }

    /// A header block's name/value pairs (before compression): count, then length-prefixed names and values.
    package static func encodeHeaders(_ headers: [(String, String)]) -> [UInt8] {
        var bytes = uint32(UInt32(headers.count))
        for (name, value) in headers {
            bytes += uint32(UInt32(name.utf8.count)) + Array(name.utf8) + uint32(UInt32(value.utf8.count)) + Array(value.utf8)
        }
        return bytes
    }

    /// Parses a decompressed header block; names lowercased, repeated values (NUL-separated) kept whole.
    package static func decodeHeaders(_ bytes: [UInt8]) -> [String: String]? {
        let count = Int(readUInt32(bytes, at: 0))
        var offset = 4
        var headers: [String: String] = [:]
        for _ in 0..<count {
            guard bytes.count >= offset + 4 else { return nil }
            let nameLength = Int(readUInt32(bytes, at: offset))
            offset += 4
            guard bytes.count >= offset + nameLength + 4 else { return nil }
            let name = String(decoding: bytes[offset..<offset + nameLength], as: UTF8.self).lowercased()
            offset += nameLength
            let valueLength = Int(readUInt32(bytes, at: offset))
            offset += 4
            guard bytes.count >= offset + valueLength else { return nil }
            headers[name] = String(decoding: bytes[offset..<offset + valueLength], as: UTF8.self)
            offset += valueLength
        }
        return headers
    }

    /// SPDY/3's header compression dictionary (draft 3, section 2.6.10.1): length-prefixed header names, then a run
    /// of status lines, dates and content types. 1423 bytes.
    package static let dictionary: [UInt8] = {
        let names = ["options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
                     "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
                     "content-base", "content-encoding", "content-language", "content-length", "content-location",
                     "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
                     "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
                     "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
                     "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
                     "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
                     "public", "set-cookie", "keep-alive", "origin"]
        let tail = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            + "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
            + "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
            + "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
            + "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
            + "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
        return names.flatMap { uint32(UInt32($0.utf8.count)) + Array($0.utf8) } + Array(tail.utf8)
    }()

    /// One direction's zlib stream of a session: every header block continues the same stream (sync-flushed per
    /// block), primed with the dictionary. Confined to the session's task.
    package final class HeaderCodec {
        private var inflater = z_stream()
        private var deflater = z_stream()
        private var inflating = false, deflating = false

        package init() {}

        deinit {
            if inflating { inflateEnd(&inflater) }
            if deflating { deflateEnd(&deflater) }
        }

        package struct Failure: Error, CustomStringConvertible {
            package var description: String
        }

        /// Decompresses one header block of the peer's stream.
        package func inflate(_ compressed: [UInt8]) throws -> [UInt8] {
            if !inflating {
                guard czlib_inflate_init(&inflater) == Z_OK else { throw Failure(description: "inflateInit failed") }
                inflating = true
            }
            var input = compressed
            var output: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 16384)
            try input.withUnsafeMutableBufferPointer { inputBuffer in
                inflater.next_in = inputBuffer.baseAddress
                inflater.avail_in = uInt(inputBuffer.count)
                while true {
                    let (result, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                        inflater.next_out = out.baseAddress
                        inflater.avail_out = uInt(out.count)
                        var result = CZlib.inflate(&inflater, Z_SYNC_FLUSH)
                        if result == Z_NEED_DICT {
                            result = SPDY.dictionary.withUnsafeBufferPointer {
                                inflateSetDictionary(&inflater, $0.baseAddress, uInt($0.count))
                            }
                            if result == Z_OK { result = CZlib.inflate(&inflater, Z_SYNC_FLUSH) }
                        }
                        return (result, out.count - Int(inflater.avail_out))
                    }
                    output += chunk[0..<produced]
                    if result == Z_BUF_ERROR || (result == Z_OK && inflater.avail_in == 0 && inflater.avail_out > 0) { break }
                    guard result == Z_OK else { throw Failure(description: "inflate failed (\(result))") }
                }
                inflater.next_in = nil
            }
            return output
        }

        /// Compresses one header block into this side's stream.
        package func deflate(_ block: [UInt8]) throws -> [UInt8] {
            if !deflating {
                guard czlib_deflate_init(&deflater, Z_DEFAULT_COMPRESSION) == Z_OK else { throw Failure(description: "deflateInit failed") }
                let primed = SPDY.dictionary.withUnsafeBufferPointer { deflateSetDictionary(&deflater, $0.baseAddress, uInt($0.count)) }
                guard primed == Z_OK else { throw Failure(description: "deflateSetDictionary failed") }
                deflating = true
            }
            var input = block
            var output: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 16384)
            try input.withUnsafeMutableBufferPointer { inputBuffer in
                deflater.next_in = inputBuffer.baseAddress
                deflater.avail_in = uInt(inputBuffer.count)
                repeat {
                    let (result, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                        deflater.next_out = out.baseAddress
                        deflater.avail_out = uInt(out.count)
                        let result = CZlib.deflate(&deflater, Z_SYNC_FLUSH)
                        return (result, out.count - Int(deflater.avail_out))
                    }
                    guard result == Z_OK || result == Z_BUF_ERROR else { throw Failure(description: "deflate failed (\(result))") }
                    output += chunk[0..<produced]
                } while deflater.avail_out == 0
                deflater.next_in = nil
            }
            return output
        }
    }
}
