#!/usr/bin/env bash
# Checks the committed generated files against what the pinned generators
# make now; fails on any difference. Needs only cargo (runs where no Swift
# toolchain is installed):
#   - the C header ffi/include/rowsync.h (cbindgen), regenerated into a
#     temporary file; fix with: cargo run -p rowsync-gen-header
#   - the Swift package's RowSync.swift and RowSyncFFI.h (UniFFI), through
#     gen-swift.sh --check; fix with: bindings/scripts/gen-swift.sh
# Usage (from anywhere): bindings/scripts/check-header.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
tmp="$(mktemp -t rowsync-h.XXXXXX)"
trap 'rm -f "$tmp"' EXIT
cargo run -q -p rowsync-gen-header -- "$tmp" >/dev/null
if diff -u ffi/include/rowsync.h "$tmp"; then
    echo "PASS: ffi/include/rowsync.h is up to date"
else
    echo "FAIL: ffi/include/rowsync.h differs from the generated header (run: cargo run -p rowsync-gen-header)"
    exit 1
fi
bash bindings/scripts/gen-swift.sh --check
