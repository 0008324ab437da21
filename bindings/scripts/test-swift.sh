#!/usr/bin/env bash
# Swift binding test: generates the Swift bindings in library mode and lays
# out a Swift package under target/bindings/swift (C module RowSyncFFI,
# Swift module RowSync, executable test from bindings/swift/Tests). Builds
# and runs it against the reference server only if `swift` is on PATH.
# Usage (from anywhere): bindings/scripts/test-swift.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_lib
PKG="$TARGET_DIR/bindings/swift"
rm -rf "$PKG"
mkdir -p "$PKG/gen" "$PKG/Sources/RowSyncFFI/include" "$PKG/Sources/RowSync" "$PKG/Sources/RowSyncTest"
cargo run -q -p uniffi-bindgen -- generate --library "$LIBDIR/librowsync_ffi.so" \
    --language swift --no-format --out-dir "$PKG/gen"
cp "$PKG/gen/RowSync.swift" "$PKG/Sources/RowSync/"
cp "$PKG/gen/RowSyncFFI.h" "$PKG/Sources/RowSyncFFI/include/"
cat >"$PKG/Sources/RowSyncFFI/include/module.modulemap" <<'MAP'
module RowSyncFFI {
    header "RowSyncFFI.h"
    link "rowsync_ffi"
    export *
}
MAP
# SwiftPM wants at least one source file in a C target.
echo '/* RowSyncFFI: the C declarations of the rowsync UniFFI scaffolding. */' >"$PKG/Sources/RowSyncFFI/shim.c"
cp bindings/swift/Tests/main.swift "$PKG/Sources/RowSyncTest/main.swift"
cat >"$PKG/Package.swift" <<'SWIFT'
// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "RowSync",
    products: [.library(name: "RowSync", targets: ["RowSync"])],
    targets: [
        .target(name: "RowSyncFFI"),
        .target(name: "RowSync", dependencies: ["RowSyncFFI"]),
        .executableTarget(name: "RowSyncTest", dependencies: ["RowSync"]),
    ]
)
SWIFT
echo "Swift package laid out in $PKG"

if ! command -v swift >/dev/null 2>&1; then
    echo "SKIP: swift not installed (bindings generated, test not run)"
    # 77: the conventional "skipped" status; make test counts it as skipped,
    # never as passed.
    exit 77
fi

start_server
echo "reference server at $SERVER_URL"
(cd "$PKG" && swift build -Xlinker -L"$LIBDIR" -Xlinker -rpath -Xlinker "$LIBDIR")
"$PKG/.build/debug/RowSyncTest" "$SERVER_URL"
echo "PASS: Swift bindings"
