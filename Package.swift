// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "kverify",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kverify", targets: ["kverify"]),
        // The CLI's commands, callable in-process (`KVerify.run(arguments:)`).
        .library(name: "KVerify", targets: ["KVerifyCommands"]),
        // The verification engine as a Swift API: pattern runs, preflight, scrapes and audits, the Kubernetes client.
        .library(
            name: "KVerifyEngine",
            targets: [
                "Verification", "KubeClient", "KubeConfig", "KubeModel", "Findings", "Scrape", "MetricRules", "PromText",
                "RESP", "RedisAudit",
            ]
        ),
        // The simulated cluster, for users' own tests (`SimulatedCluster.start`); SimStore for in-process watches.
        .library(name: "KubeSim", targets: ["KubeSim", "SimStore", "SimFaults"]),
        // The sim's network shim, LD_PRELOADed into pod processes (Sources/CSimNet/simnet.c says what it does).
        .library(name: "KVerifySimNet", type: .dynamic, targets: ["CSimNet"]),
        // The parsers alone, for the libFuzzer harnesses in Fuzz/ (a separate package, out of the default build).
        .library(name: "KVerifyParsers", targets: ["PromText", "RESP", "KubeConfig", "KubeClient", "MetricRules", "YAMLInput"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // The simulated cluster's API server. SwiftNIO directly rather than Hummingbird: watches are long chunked
        // streams, pods/proxy forwards raw bytes and every status code is ours to choose; Hummingbird would add
        // build time (CI rebuilds from scratch) for routing we do in a few lines.
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        // HTTP/2 with ALPN, as a real API server offers it: client-go, kubectl, helm and libcurl then multiplex.
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.30.0"),
    ],
    targets: [
        // The executable is a thin shell: everything lives in library targets.
        .executableTarget(name: "kverify", dependencies: ["KVerifyCommands"]),
        .target(
            name: "KVerifyCommands",
            dependencies: [
                "Findings", "PromText", "MetricRules", "HTTP", "Scrape", "RESP", "RedisAudit", "KubeClient", "KubeConfig",
                "KubeModel", "Verification", "KubeSim", "SimFaults", "SimNode", "Processes", "YAMLInput",
                .target(name: "CMalloc", condition: .when(platforms: [.linux])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "Findings"),
        // Child processes (one spawn for sim pods, exec plugins, kubectl, helm and fixtures), deadlines, and
        // blocking work kept off the cooperative pool.
        .target(name: "Processes"),
        // The size and alias-expansion budget every YAML input passes before Yams composes it.
        .target(name: "YAMLInput", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "PromText"),
        .target(
            name: "MetricRules",
            dependencies: ["PromText", "Findings", "YAMLInput", .product(name: "Yams", package: "Yams")]
        ),
        .target(name: "Scrape", dependencies: ["HTTP", "PromText", "MetricRules", "Findings"]),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // glibc's mallopt, for the executable's allocator policy (KVerify.runAsMain).
        .systemLibrary(name: "CMalloc"),
        // zlib, for the SPDY header blocks of port-forward (Foundation has no zlib API on Linux).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // SPDY/3.1 framing for port-forward: the sim serves it, the REST backend speaks it (KubeAPI.withPortForward).
        .target(name: "SPDY", dependencies: ["CZlib"]),
        .target(name: "HTTP", dependencies: ["CCurl", .product(name: "Logging", package: "swift-log")]),
        .target(name: "RESP"),
        .target(name: "RedisAudit", dependencies: ["RESP", "Findings"]),
        .target(name: "KubeModel"),
        .target(
            name: "KubeConfig",
            dependencies: ["KubeModel", "Processes", "YAMLInput", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "KubeClient",
            dependencies: [
                "HTTP", "KubeConfig", "KubeModel", "Processes", "YAMLInput", "SPDY",
                .product(name: "Yams", package: "Yams"), .product(name: "Logging", package: "swift-log"),
                // pods/exec over WebSocket: this libcurl has no WebSocket support, so the REST backend's exec is a
                // small client over a NIO connection with NIOSSL (ExecWebSocket.swift).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "Verification",
            dependencies: ["KubeClient", "KubeModel", "Findings", "PromText", "MetricRules", "Scrape", "RESP", "RedisAudit", "Processes"]
        ),
        // The simulated cluster, in layers that each go one way (docs/architecture.md): the store (objects, patching,
        // server-side apply, selectors, watches) at the bottom; faults; the API server, the control plane and the
        // node on top of it; `KubeSim` is the facade that wires them (`SimulatedCluster`).
        .target(
            name: "SimStore",
            dependencies: [
                "KubeModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/KubeSim/Store"
        ),
        .target(
            name: "SimFaults",
            dependencies: ["SimStore", .product(name: "Yams", package: "Yams")],
            path: "Sources/KubeSim/Faults"
        ),
        .target(name: "SimControlPlane", dependencies: ["KubeModel", "SimStore"], path: "Sources/KubeSim/ControlPlane"),
        .target(
            name: "SimAPIServer",
            dependencies: [
                "KubeModel", "SimStore", "SimFaults", "SPDY",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/KubeSim/APIServer"
        ),
        .target(
            name: "SimNode",
            dependencies: [
                "KubeModel", "SimStore", "SimFaults", "Processes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/KubeSim/Node"
        ),
        .target(
            name: "KubeSim",
            dependencies: [
                "KubeModel", "SimStore", "SimFaults", "SimControlPlane", "SimAPIServer", "SimNode", "Processes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/KubeSim/Cluster"
        ),
        .target(name: "CSimNet", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "KVerifyTestSupport", dependencies: ["Processes"]),
        .testTarget(
            name: "VerificationTests",
            dependencies: [
                "Verification", "KVerifyTestSupport", "KubeSim", "SimFaults", "SimStore", "KubeClient", "KubeModel", "KubeConfig", "Findings", "MetricRules",
                "PromText", "Processes", "RedisAudit", "RESP",
            ]
        ),
        .testTarget(name: "ScrapeTests", dependencies: ["Scrape", "KVerifyTestSupport", "MetricRules", "Findings", "PromText"]),

        .testTarget(name: "FindingsTests", dependencies: ["Findings"]),
        .testTarget(name: "YAMLInputTests", dependencies: ["YAMLInput"]),
        .testTarget(name: "PromTextTests", dependencies: ["PromText", "KVerifyTestSupport", "Processes"], exclude: ["Fixtures"]),
        .testTarget(name: "MetricRulesTests", dependencies: ["MetricRules", "PromText", "Findings"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "KVerifyTestSupport"]),
        .testTarget(name: "RESPTests", dependencies: ["RESP", "KVerifyTestSupport"]),
        .testTarget(name: "RedisAuditTests", dependencies: ["RedisAudit", "RESP", "KVerifyTestSupport", "Findings"]),
        .testTarget(name: "KubeModelTests", dependencies: ["KubeModel"]),
        .testTarget(
            name: "KubeSimTests",
            dependencies: ["KubeSim", "SimStore", "SimFaults", "SimControlPlane", "SimAPIServer", "SimNode", "KubeModel", "KVerifyTestSupport", "SPDY",
                           "Processes"]
        ),
        .testTarget(name: "KubeConfigTests", dependencies: ["KubeConfig", "KubeModel", "Findings", "KVerifyTestSupport"]),
        .testTarget(
            name: "KubeClientTests",
            dependencies: ["KubeClient", "KubeConfig", "KubeModel", "Findings", "HTTP", "KVerifyTestSupport", "KubeSim", "SimFaults", "SimStore",
                           "SimAPIServer", "Processes"],
            resources: [.copy("Resources")]
        ),
        .testTarget(
            name: "KVerifyCommandsTests",
            dependencies: [
                "KVerifyCommands", "KVerifyTestSupport", "Findings", "MetricRules", "PromText", "HTTP", "KubeClient", "KubeConfig", "RESP", "Processes",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "ScriptTests", dependencies: ["KVerifyTestSupport", "Processes"]),
    ]
)

// Strict settings for every Swift target, as swift-log does.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ]
}
