import FuzzDriver

// SwiftPM links an executable through <Target>_main; the shared driver hands control to libFuzzer from there.
@_cdecl("FuzzManifest_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 { runLibFuzzer(argc, argv, fuzz) }
