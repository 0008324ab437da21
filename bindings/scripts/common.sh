#!/usr/bin/env bash
# Shared helpers of the binding test scripts (sourced, not run): repo root,
# building the library and the reference server, and starting the server on
# a free loopback port (killed on exit through a trap).

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LIBDIR="$TARGET_DIR/debug"
SERVER_PID=""
SERVER_URL=""
WORKDIR="$(mktemp -d -t rowsync-bindings.XXXXXX)"

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

build_lib() {
    cargo build -q -p rowsync-ffi -p rowsync-refserver
}

# Starts the reference server (the real Mahak dialect, a small shop, the
# admin interface the tests use to change what the login says) on a free
# port; sets SERVER_URL.
start_server() {
    "$TARGET_DIR/debug/rowsync-refserver" --port 0 --data "$WORKDIR/server.db" \
        --seed-products 5 --seed-persons 3 --seed-pictures 3 --admin \
        >"$WORKDIR/server.out" 2>"$WORKDIR/server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        SERVER_URL="$(head -n1 "$WORKDIR/server.out" 2>/dev/null || true)"
        if [ -n "$SERVER_URL" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "reference server did not start:" >&2
    cat "$WORKDIR/server.err" >&2
    return 1
}
