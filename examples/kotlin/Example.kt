// Example: open a replica, write a record offline, sync it to the server
// given as argument. Compile with the generated bindings (see
// bindings/scripts/test-kotlin.sh) and run with -Djna.library.path=target/debug.
// Call the engine off the UI thread: every method blocks.

import com.mahak.rowsync.*

fun main(args: Array<String>) {
    val url = args.firstOrNull() ?: error("usage: Example BASE_URL")
    RowsyncEngine.open("example.db", defaultSettings(url)).use { engine ->
        engine.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))
        val product = engine.create("products", """{"name": "Kotlin example", "price": 1000}""")
        println("created $product")
        try {
            val report = engine.sync()
            println("pushed ${report.pushed}, pulled ${report.pulled}, pending ${report.pending}")
        } catch (e: RowsyncException.Offline) {
            println("offline, the change stays queued: ${e.detail}")
        } catch (e: RowsyncException.AuthFailed) {
            println("login refused: ${e.detail}")
        }
    }
}
