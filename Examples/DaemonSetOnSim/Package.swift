// swift-tools-version: 6.1
// An example of kverify as a library: a package of your own that depends on kverify and verifies a DaemonSet on
// the simulated cluster, as `kverify daemonset --sim` does. Built and run by Tests/ScriptTests/ExampleTests.swift.
import PackageDescription

let package = Package(
    name: "DaemonSetOnSim",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "kverify", path: "../..")],
    targets: [
        .executableTarget(
            name: "DaemonSetOnSim",
            dependencies: [.product(name: "KVerifyEngine", package: "kverify"), .product(name: "KubeSim", package: "kverify")]
        ),
    ]
)
