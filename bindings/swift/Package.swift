// swift-tools-version:6.0
// RowSync: the Swift face of the rowsync sync engine. The `RowSync` library
// is the UniFFI-generated layer (Sources/RowSync/Generated, committed) plus
// hand-written async calls and streams; `RowSyncFFI` is the C module of the
// Rust library. See README.md for how the library is found and for the
// Apple (XCFramework) recipe.

import Foundation
import PackageDescription

let packageDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

// On Apple platforms the Rust library ships as an XCFramework (static
// libraries for iOS devices, the simulator and macOS, with the header and a
// module map): built by the recipe of README.md into this folder, it
// replaces the system-library module. Elsewhere (Linux) RowSyncFFI is the
// header and module map of Sources/RowSyncFFI, which link librowsync_ffi
// from the linker's search path.
let xcframework = "RowSyncFFI.xcframework"
let ffiTarget: Target =
    FileManager.default.fileExists(atPath: "\(packageDir)/\(xcframework)")
    ? .binaryTarget(name: "RowSyncFFI", path: xcframework)
    : .systemLibrary(name: "RowSyncFFI", path: "Sources/RowSyncFFI")

let package = Package(
    name: "RowSync",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "RowSync", targets: ["RowSync"])
    ],
    targets: [
        ffiTarget,
        .target(
            name: "RowSync",
            dependencies: ["RowSyncFFI"],
            linkerSettings: [
                // SQLCipher's crypto on Apple platforms (CommonCrypto).
                .linkedFramework("Security", .when(platforms: [.iOS, .macOS]))
            ]
        ),
        .testTarget(name: "RowSyncTests", dependencies: ["RowSync"]),
    ],
    swiftLanguageModes: [.v6]
)
