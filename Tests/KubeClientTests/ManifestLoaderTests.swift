import Findings
import Foundation
import KubeClient
import KubeModel
import Testing

@Suite("manifest loading")
struct ManifestLoaderTests {
    @Test("a v1 List, in JSON as kubectl get -o json prints it, stands for its items; an item without a name is named by its index")
    func list() throws {
        let json = """
            {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop-redis"}},
              {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "shop-web", "namespace": "obs"}}
            ]}
            """
        let manifests = try ManifestLoader.load(yaml: json, file: "list.json")
        #expect(manifests.map { "\($0.kind)/\($0.name)" } == ["Service/shop-redis", "DaemonSet/shop-web"])
        #expect(manifests.map(\.documentIndex) == [0, 0])
        #expect(throws: KubeError.self) { try ManifestLoader.load(yaml: #"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {}}]}"#, file: "l.json") }
        do {
            _ = try ManifestLoader.load(yaml: #"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {}}]}"#, file: "l.json")
        } catch let error as KubeError {
            #expect(error.message == "manifest l.json document 0 (line 1) items[0]: metadata.name is missing", "\(error.message)")
        }
        #expect(try ManifestLoader.load(yaml: #"{"apiVersion": "v1", "kind": "List", "items": []}"#, file: "e.json").isEmpty)
    }

    @Test("multi-document YAML: every object, typed scalars, empty documents skipped, positions kept")
    func multiDocument() throws {
        let yaml = """
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: obs
            ---
            # only a comment
            ---
            apiVersion: apps/v1
            kind: DaemonSet
            metadata:
              name: exporter
              labels: {app: exporter, version: "2"}
            spec:
              revisionHistoryLimit: 3
              paused: false
              ratio: 0.5
              note: "true"
            ---
            """
        let manifests = try ManifestLoader.load(yaml: yaml, file: "m.yaml")
        #expect(manifests.map(\.kind) == ["Namespace", "DaemonSet"])
        #expect(manifests.map(\.documentIndex) == [0, 2])
        let daemonSet = manifests[1]
        #expect(daemonSet.line == 9)
        #expect(daemonSet.object["spec"]?["revisionHistoryLimit"] == .number(3))
        #expect(daemonSet.object["spec"]?["paused"] == .bool(false))
        #expect(daemonSet.object["spec"]?["ratio"] == .number(0.5))
        #expect(daemonSet.object["spec"]?["note"] == .string("true"))
        #expect(daemonSet.object["metadata"]?["labels"]?["version"] == .string("2"))
        #expect(daemonSet.origin == "m.yaml document 2 (line 9) DaemonSet/exporter")
    }

    struct Broken: Sendable, CustomTestStringConvertible {
        var yaml: String
        var mentions: [String]
        var testDescription: String { mentions.joined(separator: ", ") }
    }

    @Test(arguments: [
        // A broken second document is reported, not silently dropped with everything after it.
        Broken(yaml: "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [oops\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n",
               mentions: ["bad.yaml document 1", "line 6"]),
        Broken(yaml: "apiVersion: v1\nmetadata: {name: a}\n", mentions: ["document 0", "kind is missing"]),
        Broken(yaml: "kind: Pod\napiVersion: v1\nmetadata: {}\n", mentions: ["metadata.name is missing"]),
        Broken(yaml: "- just\n- a list\n", mentions: ["expected a mapping"]),
        Broken(yaml: "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: *nowhere\n", mentions: ["document 0", "line 4"]),
    ])
    func brokenDocuments(_ broken: Broken) {
        do {
            let manifests = try ManifestLoader.load(yaml: broken.yaml, file: "bad.yaml")
            Issue.record("expected an error, got \(manifests.count) manifests")
        } catch let error as KubeError {
            #expect(error.code == .badManifest)
            for text in broken.mentions { #expect(error.message.contains(text), "\(error.message)") }
            #expect(error.isCausedByInput)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("an unreadable file names the path")
    func missingFile() {
        #expect {
            _ = try ManifestLoader.load(file: "/nonexistent/manifest.yaml")
        } throws: { error in
            (error as? KubeError)?.code == .badManifest && "\(error)".contains("/nonexistent/manifest.yaml")
        }
    }
}

@Suite("watch line decoding")
struct WatchLineDecoderTests {
    static let stream: [UInt8] = Array("""
        {"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"11"}}}
        {"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}

        {"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"ä-ü","resourceVersion":"13"}}}\r
        {"type":"SOMETHING_NEW","object":{}}
        {"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"14"}}}
        """.utf8)

    @Test("events survive any chunking, including splits inside multi-byte characters", arguments: [1, 2, 3, 7, 64, 100_000])
    func chunking(size: Int) throws {
        var decoder = WatchLineDecoder()
        var events: [WatchEvent] = []
        var index = 0
        while index < Self.stream.count {
            events += try decoder.feed(Self.stream[index..<min(index + size, Self.stream.count)])
            index += size
        }
        events += try decoder.finish()  // the last line has no newline
        #expect(events.map(\.type.rawValue) == ["ADDED", "BOOKMARK", "MODIFIED", "SOMETHING_NEW", "DELETED"])
        let modified = try events[2].decode(Pod.self)
        #expect(modified.metadata.name == "ä-ü")
    }

    @Test("a bad line after good ones in the same chunk: the good events are delivered, then the error")
    func goodEventsBeforeBadLine() throws {
        var decoder = WatchLineDecoder()
        let chunk = Array("""
            {"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"11"}}}
            {"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"12"}}}
            <html>proxy error</html>
            {"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"13"}}}

            """.utf8)
        let events = try decoder.feed(chunk)
        #expect(events.map(\.type.rawValue) == ["ADDED", "MODIFIED"])
        let next = try #require(throws: KubeError.self) { _ = try decoder.feed(Array("\n".utf8)) }
        #expect(next.code == .badResponse)
        #expect(next.message.contains("<html>proxy error"), "\(next)")
        // The stream stays failed: the end of the body reports the same error.
        #expect(throws: KubeError.self) { _ = try decoder.finish() }
    }

    @Test("a line that never ends is an error once it passes the bound")
    func unboundedLine() {
        var decoder = WatchLineDecoder(maxLineBytes: 1000)
        #expect(throws: KubeError.self) {
            for _ in 0..<20 { _ = try decoder.feed(Array(repeating: UInt8(ascii: "x"), count: 100)) }
        }
    }

    @Test("the object's bytes are delivered as the server sent them, whatever the member order and spacing")
    func objectBytesPassThrough() throws {
        let object = #"{"kind":"Pod","metadata":{"name":"p\u00e9","resourceVersion":"7"},"spec":{"a":[1,-2.5e3,true,null,"\"x\""]}}"#
        for line in [#"{"type":"MODIFIED","object":\#(object)}"#, #" { "object" : \#(object) , "type" : "MODIFIED" } "#] {
            var decoder = WatchLineDecoder()
            let events = try decoder.feed(Array((line + "\n").utf8))
            #expect(events.map(\.type) == [.modified])
            #expect(events.first?.object == Data(object.utf8))
            #expect(try events.first?.decode(Pod.self).metadata.name == "pé")
        }
    }

    @Test("a line whose object is not JSON is an error, not an event", arguments: [
        #"{"type":"ADDED","object":{"a":tru}}"#, #"{"type":"ADDED","object":{"a":1,}}"#, #"{"type":"ADDED","object":{"a":"b}}"#,
        #"{"type":"ADDED","object":{"a":01}}"#, #"{"type":"ADDED"}"#, #"{"type":"ADDED","object":{}} trailing"#, #"["ADDED",{}]"#,
    ])
    func invalidObject(line: String) {
        var decoder = WatchLineDecoder()
        #expect(throws: KubeError.self) { _ = try decoder.feed(Array((line + "\n").utf8)) }
    }

    @Test("a line that is not a watch event is named, briefly")
    func garbage() {
        var decoder = WatchLineDecoder()
        #expect {
            _ = try decoder.feed(Array("<html><body>login</body></html>\n".utf8))
        } throws: { error in
            (error as? KubeError)?.code == .badResponse && "\(error)".contains("<html>")
        }
    }
}
