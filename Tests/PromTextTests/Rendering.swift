import PromText

/// A compact, exact text form of a parse result, so table-driven tests compare whole outcomes at once:
/// one line per family (`family name type [help=…] [unit=…]`) and per sample (`  name{labels} value [@ts]
/// [# {labels} value [@ts]]`, labels in written order, Swift's `Double` spelling).
func render(_ exposition: Exposition) -> [String] {
    var lines: [String] = []
    for family in exposition.families {
        var line = "family \(family.name) \(family.type.rawValue)"
        if let help = family.help { line += " help=\(help.debugDescription)" }
        if let unit = family.unit { line += " unit=\(unit)" }
        lines.append(line)
        for sample in family.samples {
            var text = "  \(sample.name)\(render(sample.labels)) \(sample.value)"
            if let timestamp = sample.timestamp { text += " @\(timestamp)" }
            if let exemplar = sample.exemplar {
                text += " # \(render(exemplar.labels)) \(exemplar.value)"
                if let timestamp = exemplar.timestamp { text += " @\(timestamp)" }
            }
            lines.append(text)
        }
    }
    return lines
}

func render(_ labels: [Label]) -> String {
    labels.isEmpty ? "" : "{" + labels.map { "\($0.name)=\($0.value.debugDescription)" }.joined(separator: ",") + "}"
}

/// Parse outcome as text: the rendering plus oddities, or the error; equal inputs give equal outcomes.
func outcome(_ bytes: [UInt8], _ format: ExpositionFormat) -> [String] {
    do {
        let exposition = try ExpositionParser.parse(bytes, format: format)
        return render(exposition) + exposition.oddities.map { "oddity \($0.kind.rawValue) \($0.family) line \($0.line)" }
            + ["suppressed \(exposition.suppressedOddities)"]
    } catch {
        return ["error \(error)"]
    }
}

/// The same, feeding `bytes` in the given chunks.
func outcome(chunks: [ArraySlice<UInt8>], _ format: ExpositionFormat) -> [String] {
    var parser = ExpositionParser(format: format)
    do {
        for chunk in chunks { try parser.consume(Array(chunk)) }
        let exposition = try parser.finish()
        return render(exposition) + exposition.oddities.map { "oddity \($0.kind.rawValue) \($0.family) line \($0.line)" }
            + ["suppressed \(exposition.suppressedOddities)"]
    } catch {
        return ["error \(error)"]
    }
}
