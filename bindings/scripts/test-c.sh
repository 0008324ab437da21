#!/usr/bin/env bash
# C binding test: builds rowsync-ffi and the reference server, compiles
# bindings/c/test.c with -Wall -Wextra -Werror under AddressSanitizer, runs
# it against the server, then again without ASan under valgrind.
# Usage (from anywhere): bindings/scripts/test-c.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CC="${CC:-cc}"
build_lib
start_server
echo "reference server at $SERVER_URL"
# A server whose clock is 20 minutes ahead of the device's.
start_server2 --clock-offset 1200
echo "reference server 20 minutes ahead at $SERVER2_URL"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -g -I "$ROOT/ffi/include")
LINK=(-L "$LIBDIR" -Wl,-rpath,"$LIBDIR" -lrowsync_ffi)

"$CC" "${CFLAGS[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    bindings/c/test.c "${LINK[@]}" -o "$WORKDIR/test_asan"
# Rust's own allocations are not instrumented; leaks of the test are.
ASAN_OPTIONS=detect_leaks=1 "$WORKDIR/test_asan" "$SERVER_URL" "$SERVER2_URL"

if ! command -v valgrind >/dev/null 2>&1; then
    echo "installing valgrind"
    (apt-get install -y valgrind >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y valgrind >/dev/null; })
fi
"$CC" "${CFLAGS[@]}" bindings/c/test.c "${LINK[@]}" -o "$WORKDIR/test_plain"
valgrind -q --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite --error-exitcode=1 \
    "$WORKDIR/test_plain" "$SERVER_URL" "$SERVER2_URL"

# The installed library as a C user gets it (header, libraries, pkg-config),
# and the README's example program (a sale: an order and its line) built
# against it and run.
PROFILE=debug bash bindings/scripts/install.sh "$WORKDIR/prefix" >/dev/null
export PKG_CONFIG_PATH="$WORKDIR/prefix/lib/pkgconfig"
"$CC" "${CFLAGS[@]}" examples/c/example.c $(pkg-config --cflags --libs rowsync) \
    -Wl,-rpath,"$WORKDIR/prefix/lib" -o "$WORKDIR/example"
example_out="$(cd "$WORKDIR" && ./example "$SERVER_URL")"
echo "$example_out"
grep -q '"push_requests":1,"pushed":2,' <<<"$example_out" &&
    grep -q '\["orders",' <<<"$example_out" && grep -q '\["orderDetails",' <<<"$example_out" ||
    { echo "FAIL: examples/c/example.c did not push its sale"; exit 1; }
# The static library links too.
"$CC" "${CFLAGS[@]}" examples/c/example.c -I "$WORKDIR/prefix/include" \
    "$WORKDIR/prefix/lib/librowsync_ffi.a" -lpthread -ldl -lm -lcrypto -o "$WORKDIR/example_static"

echo "PASS: C bindings (ASan + valgrind, installed library, example)"
