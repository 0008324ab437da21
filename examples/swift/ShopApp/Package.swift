// swift-tools-version:6.0
// The Swift example: an app's package that depends on RowSync by path, as
// an app would on a checkout or a release of it. Built and run by
// bindings/scripts/test-swift.sh; Sale.swift is the README's Swift snippet.

import PackageDescription

let package = Package(
    name: "ShopApp",
    platforms: [.iOS(.v15), .macOS(.v12)],
    // A path dependency's identity is its folder's name: "swift".
    dependencies: [.package(path: "../../../bindings/swift")],
    targets: [
        .executableTarget(
            name: "ShopApp", dependencies: [.product(name: "RowSync", package: "swift")])
    ],
    swiftLanguageModes: [.v6]
)
