#!/usr/bin/env bash
# Swift binding test: the committed package bindings/swift, built and
# tested with `swift test` (XCTest, Tests/RowSyncTests) against the
# reference server, whose URL the tests read from ROWSYNC_TEST_SERVER; then
# the example package examples/swift/ShopApp (an app depending on RowSync by
# path, whose Sale.swift is the README's Swift snippet) built and run.
#
# Where no Swift toolchain is installed, only the checks that need none run
# (the README's Swift block equals examples/swift/ShopApp/Sources/ShopApp/
# Sale.swift) and the script exits 77: `make test` counts it as skipped,
# never as passed. The generated Swift files are checked by check-header.sh.
#
# SANITIZE=address or SANITIZE=thread runs `swift test --sanitize=...`
# instead of the plain run, its log kept in target/swift/sanitize-*.log.
# Usage (from anywhere): bindings/scripts/test-swift.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PKG="$ROOT/bindings/swift"
EXAMPLE="$ROOT/examples/swift/ShopApp"
SNIPPET="$EXAMPLE/Sources/ShopApp/Sale.swift"

# The README's Swift block (the one after the marker line) is Sale.swift.
readme_block="$WORKDIR/readme.swift"
awk '/<!-- swift: examples\/swift\/ShopApp\/Sources\/ShopApp\/Sale.swift -->/ {m=1; next}
     m==1 && /^```swift$/ {m=2; next}
     m==2 && /^```$/ {exit}
     m==2 {print}' README.md >"$readme_block"
if ! diff -u "$SNIPPET" "$readme_block"; then
    echo "FAIL: README.md's Swift block differs from ${SNIPPET#"$ROOT"/} (copy one onto the other)"
    exit 1
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "SKIP: swift not installed (README block checked; package not built, tests not run)"
    # 77: the conventional "skipped" status.
    exit 77
fi

# The hand-written Swift is formatted by the toolchain's swift-format (the
# generated file is UniFFI's, checked byte for byte instead).
unformatted=()
while IFS= read -r f; do
    if ! swift format --configuration "$PKG/.swift-format" "$f" | cmp -s - "$f"; then
        unformatted+=("${f#"$ROOT"/}")
    fi
done < <(find "$PKG" "$EXAMPLE" -name '*.swift' -not -path '*/Generated/*' -not -path '*/.build/*' | sort)
if [ ${#unformatted[@]} -gt 0 ]; then
    echo "FAIL: not formatted (run: swift format -i --configuration bindings/swift/.swift-format FILE): ${unformatted[*]}"
    exit 1
fi

build_lib
start_server
echo "reference server at $SERVER_URL"
export ROWSYNC_TEST_SERVER="$SERVER_URL"

# The linker finds librowsync_ffi in cargo's output (-L), and so does the
# test process at run time (rpath). Builds go under target/, not into the
# source tree. Warnings are errors: the package must build warning-free in
# the Swift 6 language mode.
LINK=(-Xlinker -L"$LIBDIR" -Xlinker -rpath -Xlinker "$LIBDIR")
STRICT=(-Xswiftc -warnings-as-errors)
# The tests are XCTest cases; without this, Swift Testing would also run and
# close the output with a line of 0 tests.
ONLY_XCTEST=(--disable-swift-testing)
SCRATCH="$TARGET_DIR/swift"
case "${SANITIZE:-}" in
    "")
        swift test --package-path "$PKG" --scratch-path "$SCRATCH/package" "${ONLY_XCTEST[@]}" "${LINK[@]}" "${STRICT[@]}"
        ;;
    address | thread)
        log="$TARGET_DIR/swift/sanitize-$SANITIZE.log"
        mkdir -p "$(dirname "$log")"
        # ASan: LeakSanitizer reports what is still allocated at exit, and
        # at exit XCTest still holds its test cases and libcurl (under
        # URLSession) its caches; those leaks are not ours, so they do not
        # fail the run, and any leak whose stack passes through the Rust
        # library or the RowSync module does (checked below). A small
        # quarantine of freed memory keeps the memory loop's bound
        # meaningful (the default 256 MiB would be counted as growth).
        # TSan: the Rust library is not instrumented, so a report may stem
        # from synchronisation TSan cannot see; reports are printed and
        # counted, and fail the run only through rowsync's code (below).
        export ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16:${ASAN_OPTIONS:-}"
        export LSAN_OPTIONS="exitcode=0:${LSAN_OPTIONS:-}"
        export TSAN_OPTIONS="halt_on_error=0:exitcode=0:${TSAN_OPTIONS:-}"
        # A scratch path of their own: instrumented objects must not mix
        # with the plain build's.
        status=0
        swift test --package-path "$PKG" --scratch-path "$SCRATCH/$SANITIZE" "${ONLY_XCTEST[@]}" "${LINK[@]}" \
            --sanitize="$SANITIZE" 2>&1 | tee "$log" || status=$?
        if [ $status -ne 0 ]; then
            echo "FAIL: swift test --sanitize=$SANITIZE"
            exit 1
        fi
        # A sanitizer's stack frame in the Rust library or in a RowSync
        # symbol ($s7RowSync...) makes a report ours.
        ours="$(grep -E '^ +#[0-9]+ .*(librowsync_ffi|\$s7RowSync)' "$log" || true)"
        reports="$(grep -cE '^(WARNING: ThreadSanitizer|Direct leak|Indirect leak|==[0-9]+==ERROR: AddressSanitizer)' "$log" || true)"
        echo "sanitizer reports: $reports (full log: $log)"
        if [ -n "$ours" ]; then
            echo "$ours"
            echo "FAIL: --sanitize=$SANITIZE reports through rowsync's code (above)"
            exit 1
        fi
        echo "PASS: Swift bindings under --sanitize=$SANITIZE (no report through rowsync's code)"
        exit 0
        ;;
    *)
        echo "FAIL: SANITIZE must be address or thread, not $SANITIZE"
        exit 1
        ;;
esac

# The example, an app of its own, run in a scratch directory.
swift build --package-path "$EXAMPLE" --scratch-path "$SCRATCH/example" "${LINK[@]}" "${STRICT[@]}"
example_out="$(cd "$WORKDIR" && "$SCRATCH/example/debug/ShopApp" "$SERVER_URL")"
echo "$example_out"
grep -q "^pushed 2," <<<"$example_out" && grep -q "^orderDetails .* is [0-9]* on the server" <<<"$example_out" ||
    { echo "FAIL: examples/swift/ShopApp did not push its sale"; exit 1; }

echo "PASS: Swift bindings"
