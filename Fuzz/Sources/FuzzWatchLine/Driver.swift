import CFuzzDriver

// SwiftPM links an executable through <Target>_main; hand control to libFuzzer from there.
@_cdecl("FuzzWatchLine_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in testOneInput(data, size) }
}

// libFuzzer's own objects reference this symbol, so it must exist even though the driver above passes the callback.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
