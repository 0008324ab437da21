#!/usr/bin/env bash
# Kotlin binding test: installs what is missing (JNA from apt, the Kotlin
# compiler from npm into ~/.cache/rowsync/kotlin), generates the Kotlin
# bindings in library mode, compiles them with bindings/kotlin/Test.kt and
# runs the test on the JVM against the reference server.
# Usage (from anywhere): bindings/scripts/test-kotlin.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! command -v java >/dev/null 2>&1; then
    echo "FAIL: java not found (Java 17+ is needed)"
    exit 1
fi

JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
if [ ! -f "$JNA_JAR" ]; then
    echo "installing libjna-java"
    apt-get install -y libjna-java >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y libjna-java >/dev/null; }
fi

KOTLIN_HOME="${KOTLIN_HOME:-$HOME/.cache/rowsync/kotlin/package}"
KOTLINC="$(command -v kotlinc || true)"
if [ -z "$KOTLINC" ]; then
    KOTLINC="$KOTLIN_HOME/bin/kotlinc"
    if [ ! -x "$KOTLINC" ]; then
        # Pinned, so a new Kotlin release cannot change what CI compiles with.
        version="${KOTLIN_VERSION:-2.4.20}"
        echo "fetching the Kotlin compiler $version from npm"
        cache="$(dirname "$KOTLIN_HOME")"
        mkdir -p "$cache"
        (cd "$cache" && rm -rf package kotlin-compiler-*.tgz && npm pack -q "kotlin-compiler@$version" >/dev/null && tar xzf kotlin-compiler-*.tgz)
        chmod +x "$KOTLIN_HOME"/bin/* 2>/dev/null || true
    fi
fi

build_lib
GEN="$TARGET_DIR/bindings/kotlin"
rm -rf "$GEN"
cargo run -q -p uniffi-bindgen -- generate --library "$LIBDIR/librowsync_ffi.so" \
    --language kotlin --no-format --out-dir "$GEN"

echo "compiling Kotlin (this takes a while)"
"$KOTLINC" -nowarn -cp "$JNA_JAR" "$GEN"/com/mahak/rowsync/*.kt bindings/kotlin/Test.kt \
    examples/kotlin/Example.kt \
    -d "$WORKDIR/test.jar" 2>&1 | grep -v "^warning:" || true
[ -f "$WORKDIR/test.jar" ] || { echo "FAIL: Kotlin compilation failed"; exit 1; }

start_server
echo "reference server at $SERVER_URL"
STDLIB="$(dirname "$(dirname "$(readlink -f "$KOTLINC")")")/lib/kotlin-stdlib.jar"
java -Djna.library.path="$LIBDIR" -cp "$WORKDIR/test.jar:$JNA_JAR:$STDLIB" TestKt "$SERVER_URL"

# The README's example program, run as a user would (its replica in a scratch dir).
example_out="$(cd "$WORKDIR" && java -Djna.library.path="$LIBDIR" \
    -cp "$WORKDIR/test.jar:$JNA_JAR:$STDLIB" ExampleKt "$SERVER_URL")"
echo "$example_out"
grep -q "pushed 2," <<<"$example_out" && grep -q "^orderDetails .* is [0-9]* on the server" <<<"$example_out" ||
    { echo "FAIL: examples/kotlin/Example.kt did not push its sale"; exit 1; }

echo "PASS: Kotlin bindings"
