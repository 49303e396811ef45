/// Kubernetes' `$(VAR)` expansion of a container's `command`, `args` and env values, as the kubelet does it: a
/// reference to a variable defined earlier is replaced, `$$` escapes a `$`, an unknown reference stays as written.
/// One implementation for the sim's kubelet and for kverify reading the user's manifests, so both agree.
public enum EnvExpansion {
    public static func expand(_ text: String, _ environment: [String: String]) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "$", next < text.endIndex {
                if text[next] == "$" {
                    result.append("$")
                    index = text.index(after: next)
                    continue
                }
                if text[next] == "(", let close = text[next...].firstIndex(of: ")") {
                    let name = String(text[text.index(after: next)..<close])
                    if let value = environment[name] {
                        result += value
                    } else {
                        result += text[index...close]
                    }
                    index = text.index(after: close)
                    continue
                }
            }
            result.append(character)
            index = next
        }
        return result
    }
}
