// libyaml's event parser, the C library under Yams. Yams keeps it internal; SwiftPM exposes the module map of a
// dependency's C target to dependents, so the budget can walk the same events Yams composes from.
internal import CYaml

/// The one gate every YAML document from a user passes before Yams composes it (rules files, kubeconfigs,
/// manifests): a size limit and a budget of nodes counted with every alias expanded.
///
/// Yams resolves an alias to its anchor's node, so nested aliases ("billion laughs": 547 bytes, 10⁹ nodes) make a
/// DAG that any walk — kverify's conversion to JSON, Yams' own duplicate-key check hashing a mapping key — expands
/// into a tree, until memory or patience runs out. The budget is counted on libyaml's event stream in one pass,
/// in time and memory linear in the input, before a single node is built.
public enum YAMLBudget {
    /// The limits; `standard` is what kverify applies.
    public struct Limits: Sendable, Equatable {
        public var maxBytes: Int
        public var maxNodes: Int

        public init(maxBytes: Int, maxNodes: Int) {
            self.maxBytes = maxBytes
            self.maxNodes = maxNodes
        }

        /// 16 MiB, and 1,000,000 nodes with aliases expanded (all documents of a stream together) — far above
        /// any kubeconfig, rules file or rendered chart, far below what exhausts memory.
        public static let standard = Limits(maxBytes: 16 << 20, maxNodes: 1_000_000)
    }

    /// Why a document was refused; `description` names the limit, and the line for an expansion.
    public struct Exceeded: Error, Sendable, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Throws when `text` is larger than `limits.maxBytes`, or expands past `limits.maxNodes` nodes. Syntax
    /// errors are left to Yams, whose messages carry line and column.
    public static func check(_ text: String, limits: Limits = .standard) throws(Exceeded) {
        var bytes = Array(text.utf8)
        guard bytes.count <= limits.maxBytes else {
            throw Exceeded(description: "\(bytes.count) bytes of YAML, more than kverify's limit of \(limits.maxBytes) bytes")
        }
        if !bytes.contains(UInt8(ascii: "*")) { return }  // no alias, nothing can expand
        if let line = bytes.withUnsafeMutableBufferPointer({ expansionPastLimit($0, maxNodes: limits.maxNodes) }) {
            throw Exceeded(description: "line \(line): YAML aliases expand to more than kverify's limit of \(limits.maxNodes) nodes "
                + "(nested aliases, a \"billion laughs\" document?); write the repeated parts out, or split the file")
        }
    }

    /// The 1-based line of the event where the expanded node count passed `maxNodes`, or nil.
    private static func expansionPastLimit(_ buffer: UnsafeMutableBufferPointer<UInt8>, maxNodes: Int) -> Int? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
        var anchors: [String: Int] = [:]  // anchor name → nodes its node expands to
        var open: [(anchor: String?, nodes: Int)] = []  // collections being read
        var total = 0
        func add(_ nodes: Int, anchor: String?) {
            if let last = open.indices.last { open[last].nodes = open[last].nodes.addingReportingOverflow(nodes).partialValue }
            if let anchor { anchors[anchor] = nodes }
        }
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else { return nil }  // a syntax error: Yams reports it
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            switch event.type {
            case YAML_SCALAR_EVENT:
                total += 1
                add(1, anchor: name(event.data.scalar.anchor))
            case YAML_ALIAS_EVENT:
                let nodes = name(event.data.alias.anchor).flatMap { anchors[$0] } ?? 1
                total = total.addingReportingOverflow(nodes).overflow ? Int.max : total + nodes
                add(nodes, anchor: nil)
            case YAML_SEQUENCE_START_EVENT:
                total += 1
                open.append((name(event.data.sequence_start.anchor), 1))
            case YAML_MAPPING_START_EVENT:
                total += 1
                open.append((name(event.data.mapping_start.anchor), 1))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                if let done = open.popLast() { add(min(done.nodes, maxNodes + 1), anchor: done.anchor) }
            case YAML_STREAM_END_EVENT, YAML_NO_EVENT:
                return nil
            default:
                break
            }
            if total > maxNodes { return line }
        }
    }

    private static func name(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }
}
