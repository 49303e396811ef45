import Foundation

/// Just enough PEM and DER to fail early and clearly: is this a certificate, is that a key, and is the client
/// certificate within its validity period (an expired one otherwise surfaces as an opaque TLS alert).
public enum PEM {
    /// Throws `.badPEM` unless `bytes` contain a PEM certificate block.
    public static func requireCertificate(_ bytes: [UInt8], what: String) throws {
        guard String(decoding: bytes, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
            throw KubeConfigError(.badPEM, "\(what) is not a PEM certificate (no BEGIN CERTIFICATE block in \(bytes.count) bytes)")
        }
    }

    /// Throws `.badPEM` unless `bytes` contain a PEM private key block (PKCS#1, PKCS#8 or EC). Never quotes the bytes.
    public static func requirePrivateKey(_ bytes: [UInt8], what: String) throws {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.range(of: "-----BEGIN [A-Z ]*PRIVATE KEY-----", options: .regularExpression) != nil else {
            throw KubeConfigError(.badPEM, "\(what) is not a PEM private key (no BEGIN … PRIVATE KEY block in \(bytes.count) bytes)")
        }
    }

    /// Throws `.certificateExpired` when the first certificate's validity does not include `now`,
    /// `.badPEM` when its body is not base64/DER.
    public static func requireCurrentlyValid(_ bytes: [UInt8], what: String, now: Date = Date()) throws {
        let validity = try self.validity(bytes, what: what)
        let formatter = ISO8601DateFormatter()
        if now > validity.notAfter {
            throw KubeConfigError(
                .certificateExpired,
                "\(what) expired at \(formatter.string(from: validity.notAfter)); renew it (e.g. kind: recreate the cluster, "
                    + "kubeadm: kubeadm certs renew) and update the kubeconfig")
        }
        if now < validity.notBefore {
            throw KubeConfigError(
                .certificateExpired,
                "\(what) is not valid before \(formatter.string(from: validity.notBefore)); check this machine's clock")
        }
    }

    /// The first certificate's `notBefore`/`notAfter`.
    public static func validity(_ bytes: [UInt8], what: String) throws -> (notBefore: Date, notAfter: Date) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let begin = text.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = text.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<text.endIndex),
            let der = Data(base64Encoded: text[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace })
        else {
            throw KubeConfigError(.badPEM, "\(what): the certificate block is not valid base64")
        }
        guard let validity = DER.validity(Array(der)) else {
            throw KubeConfigError(.badPEM, "\(what): the certificate block is not an X.509 certificate")
        }
        return validity
    }
}

/// A minimal DER walker for X.509's `tbsCertificate.validity`.
enum DER {
    struct Element {
        var tag: UInt8
        var content: ArraySlice<UInt8>
        var end: Int
    }

    static func element(_ bytes: ArraySlice<UInt8>, at start: Int) -> Element? {
        var index = start
        guard index + 2 <= bytes.endIndex else { return nil }
        let tag = bytes[index]
        index += 1
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7f
            guard count > 0, count <= 4, index + count <= bytes.endIndex else { return nil }
            length = bytes[index..<index + count].reduce(0) { $0 << 8 | Int($1) }
            index += count
        }
        guard length >= 0, index + length <= bytes.endIndex else { return nil }
        return Element(tag: tag, content: bytes[index..<index + length], end: index + length)
    }

    static func validity(_ der: [UInt8]) -> (notBefore: Date, notAfter: Date)? {
        guard let certificate = element(der[...], at: 0), certificate.tag == 0x30,
            let tbs = element(certificate.content, at: certificate.content.startIndex), tbs.tag == 0x30
        else { return nil }
        var cursor = tbs.content.startIndex
        var fields: [Element] = []
        while cursor < tbs.content.endIndex, fields.count < 6, let next = element(tbs.content, at: cursor) {
            fields.append(next)
            cursor = next.end
        }
        // [0] version is optional: skip it when present.
        if fields.first?.tag == 0xA0 { fields.removeFirst() }
        // serialNumber, signature, issuer, validity.
        guard fields.count >= 4, fields[3].tag == 0x30 else { return nil }
        let validity = fields[3].content
        guard let notBefore = element(validity, at: validity.startIndex),
            let notAfter = element(validity, at: notBefore.end),
            let before = time(notBefore), let after = time(notAfter)
        else { return nil }
        return (before, after)
    }

    /// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    static func time(_ element: Element) -> Date? {
        let text = String(decoding: element.content, as: UTF8.self)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        switch element.tag {
        case 0x17:
            formatter.dateFormat = "yyMMddHHmmss'Z'"
            // X.509: two-digit years 50–99 are 19xx, 00–49 are 20xx.
            guard let yy = Int(text.prefix(2)) else { return nil }
            formatter.twoDigitStartDate = nil
            formatter.dateFormat = "yyyyMMddHHmmss'Z'"
            return formatter.date(from: (yy >= 50 ? "19" : "20") + text)
        case 0x18:
            formatter.dateFormat = "yyyyMMddHHmmss'Z'"
            return formatter.date(from: text)
        default:
            return nil
        }
    }
}
