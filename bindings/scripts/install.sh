#!/usr/bin/env bash
# Installs the C library: header, shared and static libraries, and a
# pkg-config file, under PREFIX (include/, lib/, lib/pkgconfig/).
# Usage: bindings/scripts/install.sh PREFIX   (PROFILE=debug to skip the
# release build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
PREFIX="$1"
PROFILE="${PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$PROFILE" = release ]; then
    cargo build -q --release -p rowsync-ffi
else
    cargo build -q -p rowsync-ffi
fi
LIB="$TARGET_DIR/$PROFILE"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"

install -d "$PREFIX/include" "$PREFIX/lib/pkgconfig"
install -m 644 ffi/include/rowsync.h "$PREFIX/include/rowsync.h"
install -m 755 "$LIB/librowsync_ffi.so" "$PREFIX/lib/librowsync_ffi.so"
install -m 644 "$LIB/librowsync_ffi.a" "$PREFIX/lib/librowsync_ffi.a"
cat >"$PREFIX/lib/pkgconfig/rowsync.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: rowsync
Description: Offline-first sync engine for the Mahak Sync API (C API)
Version: $VERSION
Libs: -L\${libdir} -lrowsync_ffi
Libs.private: -lpthread -ldl -lm -lcrypto
Cflags: -I\${includedir}
PC
echo "installed rowsync $VERSION ($PROFILE) under $PREFIX"
