#!/usr/bin/env bash
# The Swift package's generated files: builds rowsync-ffi, runs UniFFI's
# Swift generator in library mode (no formatting, so the output depends on
# nothing but the pinned UniFFI), and writes RowSync.swift and RowSyncFFI.h
# into bindings/swift/Sources. With --check, writes them to a temporary
# directory instead and fails on any difference with the committed ones.
# Needs only cargo (no Swift toolchain).
# Usage (from anywhere): bindings/scripts/gen-swift.sh [--check]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PKG=bindings/swift
# Where each generated file lives in the package.
SWIFT_OUT="$PKG/Sources/RowSync/Generated/RowSync.swift"
HEADER_OUT="$PKG/Sources/RowSyncFFI/RowSyncFFI.h"

tmp="$(mktemp -d -t rowsync-swift-gen.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# The same builds as the binding tests (common.sh, test-kotlin.sh), so their
# artifacts are shared rather than rebuilt with other features.
cargo build -q -p rowsync-ffi -p rowsync-refserver
cargo run -q -p uniffi-bindgen -- generate --library "$TARGET_DIR/debug/librowsync_ffi.so" \
    --language swift --no-format --out-dir "$tmp" >/dev/null
# The generated module map is not used: the package's own names the library
# to link (Sources/RowSyncFFI/module.modulemap).
for f in RowSync.swift RowSyncFFI.h; do
    [ -f "$tmp/$f" ] || { echo "FAIL: UniFFI did not generate $f"; exit 1; }
done

if [ "${1:-}" = "--check" ]; then
    status=0
    diff -u "$SWIFT_OUT" "$tmp/RowSync.swift" || status=1
    diff -u "$HEADER_OUT" "$tmp/RowSyncFFI.h" || status=1
    if [ $status -ne 0 ]; then
        echo "FAIL: the generated Swift bindings differ from the committed ones (run: bindings/scripts/gen-swift.sh)"
        exit 1
    fi
    echo "PASS: $SWIFT_OUT and $HEADER_OUT are up to date"
else
    cp "$tmp/RowSync.swift" "$SWIFT_OUT"
    cp "$tmp/RowSyncFFI.h" "$HEADER_OUT"
    echo "wrote $SWIFT_OUT and $HEADER_OUT"
fi
