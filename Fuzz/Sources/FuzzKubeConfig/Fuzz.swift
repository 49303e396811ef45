import Foundation
import KubeConfig

/// One kubeconfig file, loaded as kverify loads it (exec plugins are only run later, never at load).
let path = FileManager.default.temporaryDirectory.appendingPathComponent("kverify-fuzz-kubeconfig-\(getpid())").path

func fuzz(_ bytes: [UInt8]) {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
    let loader = KubeConfigLoader(environment: [:], homeDirectory: "/nonexistent", serviceAccountDirectory: "/nonexistent")
    _ = try? loader.load(.init(kubeconfig: path))
}
