import KubeConfig

/// PEM armour and the DER walk that reads a certificate's validity.
func fuzz(_ bytes: [UInt8]) {
    _ = try? PEM.requireCertificate(bytes, what: "fuzz")
    _ = try? PEM.requirePrivateKey(bytes, what: "fuzz")
    _ = try? PEM.validity(bytes, what: "fuzz")
}
