// swift-tools-version: 6.1
// libFuzzer harnesses, one executable per parser. A separate package so that `swift build` at the root never
// builds them; scripts/fuzz.sh builds them with -sanitize=fuzzer,address and runs each for a chosen time.
import PackageDescription

let harnesses = ["FuzzPromText", "FuzzRESP", "FuzzKubeConfig", "FuzzPEM", "FuzzManifest", "FuzzWatchLine", "FuzzRuleFile"]

let package = Package(
    name: "kverify-fuzz",
    dependencies: [.package(name: "kverify", path: "..")],
    targets: [.target(name: "CFuzzDriver"), .target(name: "FuzzDriver", dependencies: ["CFuzzDriver"])] + harnesses.map { name in
        .executableTarget(
            name: name,
            dependencies: ["FuzzDriver", .product(name: "KVerifyParsers", package: "kverify")])
    }
)
