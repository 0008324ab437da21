// Example: open a replica, write a record offline, sync it to the server
// given as argument. Compile with the generated bindings (see
// bindings/scripts/test-kotlin.sh) and run with -Djna.library.path=target/debug.
// Call the engine off the UI thread: every method blocks.

import com.mahak.rowsync.*

fun main(args: Array<String>) {
    val url = args.firstOrNull() ?: error("usage: Example BASE_URL")
    RowsyncEngine.open("example.db", defaultSettings(url)).use { engine ->
        engine.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))
        val person = engine.create("people", """{"name": "مشتري Kotlin ", "mobile": "09120000000"}""")
        println("created $person")
        try {
            val report = engine.sync()
            println("pushed ${report.pushed}, pulled ${report.pulled}, pending ${report.pending}")
            println("this tablet is visitor ${engine.session()?.visitorId} on the server")
        } catch (e: RowsyncException.Offline) {
            println("offline, the change stays queued: ${e.detail}")
        } catch (e: RowsyncException.AuthFailed) {
            println("login refused: ${e.detail}")
        }
    }
}
