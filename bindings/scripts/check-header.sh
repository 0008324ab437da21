#!/usr/bin/env bash
# Regenerates the C header with the pinned cbindgen into a temporary file and
# diffs it against the committed ffi/include/rowsync.h; fails on any
# difference. Fix with: cargo run -p rowsync-gen-header
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
