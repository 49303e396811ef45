// swift-tools-version: 6.1
// The measuring tools behind scripts/bench/kube_proxy.sh and readiness.sh. A package of their own so that
// `swift build` of kverify never builds them; they use kverify only through its public library products.
import PackageDescription

let package = Package(
    name: "kverify-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "kverify", path: "..")],
    targets: [
        // Proxy GETs through either KubeAPI backend.
        .executableTarget(name: "kverify-bench", dependencies: [.product(name: "KVerifyEngine", package: "kverify")]),
        // Readiness-to-verdict latency of kverify's wait vs `kubectl rollout status`.
        .executableTarget(
            name: "kverify-readiness-bench",
            dependencies: [.product(name: "KVerifyEngine", package: "kverify"), .product(name: "KubeSim", package: "kverify")]
        ),
    ]
)

for target in package.targets {
    target.swiftSettings = [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")]
}
