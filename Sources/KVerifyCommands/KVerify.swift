import ArgumentParser

public struct KVerify: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "kverify")
    public init() {}

    public static func runAsMain() async { await main() }
}
