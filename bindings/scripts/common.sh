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
SERVER2_PID=""
SERVER2_URL=""
WORKDIR="$(mktemp -d -t rowsync-bindings.XXXXXX)"

cleanup() {
    for pid in "$SERVER_PID" "$SERVER2_PID"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
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
        --user user1:pass1 --user user2:pass2 --user-visitor user2:77 \
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

# A second reference server with the habits "$@" (e.g. --clock-offset 1200),
# a small shop, on a free port; sets SERVER2_URL.
start_server2() {
    "$TARGET_DIR/debug/rowsync-refserver" --port 0 --data "$WORKDIR/server2.db" \
        --seed-products 2 --seed-persons 1 "$@" \
        >"$WORKDIR/server2.out" 2>"$WORKDIR/server2.err" &
    SERVER2_PID=$!
    for _ in $(seq 1 100); do
        SERVER2_URL="$(head -n1 "$WORKDIR/server2.out" 2>/dev/null || true)"
        if [ -n "$SERVER2_URL" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "second reference server did not start:" >&2
    cat "$WORKDIR/server2.err" >&2
    return 1
}
