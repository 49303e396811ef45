#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The float grammar of sample values and of `le` and `quantile` label values, for code that reads the model
/// (rules check bucket bounds and quantiles the way the parser read them, without a `strtod` per sample).
public enum ExpositionNumber {
    /// `text` read as the parser reads a float (decimal, ±Inf, NaN; no hexadecimal, no `_`), or nil.
    public static func parseFloat(_ text: String) -> Double? {
        var text = text
        return text.withUTF8 { bytes in
            bytes.isEmpty ? nil : NumberSyntax.parseFloat(bytes.baseAddress!, bytes.count)
        }
    }
}

/// The number grammars of the two formats, read straight from bytes.
///
/// Accepted floats: `[+-]digits[.digits][(e|E)[+-]digits]`, `[+-].digits…`, `[+-](Inf|Infinity)` and `NaN`
/// (case-insensitive). Hexadecimal floats and `_` separators are rejected, as expfmt and OpenMetrics do.
enum NumberSyntax {
    /// A sample value or label value such as `le`: a float or ±Inf/NaN.
    static func parseFloat(_ start: UnsafePointer<UInt8>, _ length: Int) -> Double? {
        if let special = parseSpecial(start, length) { return special }
        return parseDecimal(start, length)
    }

    /// An OpenMetrics timestamp: a decimal real number (no Inf or NaN).
    static func parseRealNumber(_ start: UnsafePointer<UInt8>, _ length: Int) -> Double? {
        parseDecimal(start, length)
    }

    /// A text-format timestamp: a signed 64-bit integer (milliseconds).
    static func parseInt64(_ start: UnsafePointer<UInt8>, _ length: Int) -> Int64? {
        var i = 0
        var negative = false
        if length > 0 && (start[0] == UInt8(ascii: "+") || start[0] == UInt8(ascii: "-")) {
            negative = start[0] == UInt8(ascii: "-")
            i = 1
        }
        guard i < length else { return nil }
        var magnitude: UInt64 = 0
        while i < length {
            let digit = start[i] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            guard !o1, !o2 else { return nil }
            magnitude = sum
            i += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// `[+-]inf`, `[+-]infinity`, `nan` in any case.
    private static func parseSpecial(_ start: UnsafePointer<UInt8>, _ length: Int) -> Double? {
        guard length >= 3 else { return nil }
        var i = 0
        var sign = 1.0
        let first = start[0]
        if first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            sign = first == UInt8(ascii: "-") ? -1 : 1
            i = 1
        }
        let rest = length - i
        if rest == 3 && i == 0 && lowerEquals(start, length, "nan") { return .nan }
        if (rest == 3 || rest == 8) && lowerEquals(start + i, rest, rest == 3 ? "inf" : "infinity") {
            return sign * .infinity
        }
        return nil
    }

    private static func lowerEquals(_ start: UnsafePointer<UInt8>, _ length: Int, _ word: StaticString) -> Bool {
        guard word.utf8CodeUnitCount == length else { return false }
        let expected = word.utf8Start
        for i in 0..<length where start[i] | 0x20 != expected[i] { return false }
        return true
    }

    private static let powersOf10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// Decimal syntax check plus conversion: exact fast path (Clinger) when the digits fit, else `strtod`.
    private static func parseDecimal(_ start: UnsafePointer<UInt8>, _ length: Int) -> Double? {
        var i = 0
        var negative = false
        if length > 0 && (start[0] == UInt8(ascii: "+") || start[0] == UInt8(ascii: "-")) {
            negative = start[0] == UInt8(ascii: "-")
            i = 1
        }
        var mantissa: UInt64 = 0
        var significantDigits = 0
        var exponent = 0
        var sawDigit = false
        var inexact = false
        while i < length {
            let digit = start[i] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            sawDigit = true
            if mantissa == 0 && digit == 0 {
                // leading zero: no effect
            } else if significantDigits < 19 {
                mantissa = mantissa &* 10 &+ UInt64(digit)
                significantDigits += 1
            } else {
                exponent += 1
                inexact = true
            }
            i += 1
        }
        if i < length && start[i] == UInt8(ascii: ".") {
            i += 1
            while i < length {
                let digit = start[i] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                sawDigit = true
                if mantissa == 0 && digit == 0 {
                    exponent -= 1
                } else if significantDigits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(digit)
                    significantDigits += 1
                    exponent -= 1
                } else {
                    inexact = true
                }
                i += 1
            }
        }
        guard sawDigit else { return nil }
        if i < length && start[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            var exponentNegative = false
            if i < length && (start[i] == UInt8(ascii: "+") || start[i] == UInt8(ascii: "-")) {
                exponentNegative = start[i] == UInt8(ascii: "-")
                i += 1
            }
            var written = 0
            var sawExponentDigit = false
            while i < length {
                let digit = start[i] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                sawExponentDigit = true
                if written < 100_000 { written = written * 10 + Int(digit) }
                i += 1
            }
            guard sawExponentDigit else { return nil }
            exponent += exponentNegative ? -written : written
        }
        guard i == length else { return nil }
        if mantissa == 0 { return negative ? -0.0 : 0.0 }
        if !inexact && mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22 {
            let value = exponent < 0
                ? Double(mantissa) / powersOf10[-exponent] : Double(mantissa) * powersOf10[exponent]
            return negative ? -value : value
        }
        return slowParse(start, length)
    }

    /// `strtod` on a NUL-terminated copy; only reached for syntax already checked above.
    private static func slowParse(_ start: UnsafePointer<UInt8>, _ length: Int) -> Double? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
            for i in 0..<length { buffer[i] = CChar(bitPattern: start[i]) }
            buffer[length] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }
}
