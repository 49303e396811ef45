import CFuzzDriver

/// The harness's input function; set once by `runLibFuzzer` before libFuzzer calls back.
nonisolated(unsafe) private var harness: (([UInt8]) -> Void)?

/// Hands control to libFuzzer (from a harness's `<Target>_main`, through which SwiftPM links executables) and feeds
/// every input to `fuzz`.
public func runLibFuzzer(
    _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ fuzz: @escaping ([UInt8]) -> Void
) -> Int32 {
    harness = fuzz
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in testOneInput(data, size) }
}

// libFuzzer's own objects reference this symbol, so it must exist even though the driver above passes the callback.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    harness?(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
