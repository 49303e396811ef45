import Foundation
import Testing
import YAMLInput

#if canImport(Glibc)
import Glibc
#endif

/// Every file a user names is read by `InputFile`: what cannot be read is named in plain words, never a Foundation
/// error domain; pipes are read as kubectl reads them.
@Suite("InputFile: reading a file the user named")
struct InputFileTests {
    /// A scratch directory removed after `body`.
    static func withScratch<T>(_ body: (String) throws -> T) throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-input-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(directory)
    }

    static func reason(_ path: String, limit: Int = 1 << 20) -> String? {
        do {
            _ = try InputFile.read(path, limit: limit)
            return nil
        } catch {
            return error.reason
        }
    }

    @Test("a regular file is read whole; a directory, a missing file and one over the limit are named")
    func regularAndRefused() throws {
        try Self.withScratch { directory in
            let file = directory + "/config"
            try Data("apiVersion: v1\n".utf8).write(to: URL(fileURLWithPath: file))
            let content = try InputFile.read(file)
            #expect(content == Array("apiVersion: v1\n".utf8))
            #expect(Self.reason(directory) == "is a directory")
            #expect(Self.reason(directory + "/missing") == "does not exist")
            #expect(Self.reason(file + "/below") == "does not exist (a part of its path is not a directory)")
            #expect(Self.reason(file, limit: 4) == "is 15 bytes, more than kverify's limit of 4 bytes")
        }
    }

    @Test("a file without read permission says so (skipped as root, whom no mode stops)")
    func permission() throws {
        try Self.withScratch { directory in
            let file = directory + "/secret"
            try Data("x".utf8).write(to: URL(fileURLWithPath: file))
            #expect(chmod(file, 0) == 0)
            if geteuid() == 0 {
                #expect(Self.reason(file) == nil, "root reads any mode")
            } else {
                #expect(Self.reason(file) == "cannot be read: permission denied")
            }
        }
    }

    @Test("a named pipe is read to its writer's end; one nobody writes to reads as empty instead of hanging the open")
    func namedPipe() throws {
        try Self.withScratch { directory in
            let fifo = directory + "/pipe"
            #expect(mkfifo(fifo, 0o600) == 0)
            let empty = try InputFile.read(fifo)
            #expect(empty == [], "no writer: empty at once")
            // A reader kept open holds the pipe's buffer, so a writer can fill it and leave before InputFile opens.
            let keeper = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            defer { close(keeper) }
            let writer = open(fifo, O_WRONLY | O_CLOEXEC)
            let text = Array("kind: Pod\n".utf8)
            #expect(text.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) } == text.count)
            close(writer)
            let content = try InputFile.read(fifo)
            #expect(content == text)
        }
    }
}
