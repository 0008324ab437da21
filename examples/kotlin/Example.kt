// Example: a shop's sale from Kotlin, in the real Mahak dialect (the
// default). Syncs with the server given as argument (pulling products, their
// details, people...), writes a sale (an order of type 201 for the session's
// visitor, with one line on a product detail) as one group, and syncs it.
// Compile with the generated bindings (see bindings/scripts/test-kotlin.sh)
// and run with -Djna.library.path=target/debug. Call the engine off the UI
// thread: every method blocks.

import com.mahak.rowsync.*

// Records cross as JSON text: on Android, use org.json or kotlinx.serialization.
private fun longField(json: String, key: String): Long? =
    Regex("\"$key\":(-?\\d+)").find(json)?.groupValues?.get(1)?.toLong()

fun main(args: Array<String>) {
    val url = args.firstOrNull() ?: error("usage: Example BASE_URL")
    RowsyncEngine.open("example.db", defaultSettings(url)).use { engine ->
        engine.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))
        try {
            engine.sync()
            val visitor = engine.session()?.visitorId ?: error("the server named no visitor")
            println("this tablet is visitor $visitor on the server")
            val detail = engine.list("productDetails", ListQuery(limit = 1uL)).records.firstOrNull()
                ?: error("the server sent no product detail to sell")
            val detailId = longField(detail, "productDetailId")
            val price = longField(detail, "price1") ?: 0L
            // The line names its order by the group (operation 0).
            val sale = engine.writeGroup(
                listOf(
                    WriteOp.Create("orders", """{"orderType": 201, "visitorId": $visitor, "description": "Kotlin sale"}""", null),
                    WriteOp.Create("orderDetails", """{"productDetailId": $detailId, "count1": 2, "price": $price}""", 0u),
                ),
            )
            println("sale $sale")
            val report = engine.sync()
            println("pushed ${report.pushed}, pulled ${report.pulled}, pending ${report.pending}")
            for (m in report.idMappings) println("${m.collection} ${m.clientId} is ${m.serverId} on the server")
        } catch (e: RowsyncException.Offline) {
            println("offline, the sale stays queued: ${e.detail}")
        } catch (e: RowsyncException.AuthFailed) {
            println("login refused: ${e.detail}")
        } catch (e: RowsyncException.ReplicaMismatch) {
            println("this login is another ${e.what} (${e.server}, the replica holds ${e.replica}): wipe to switch")
        }
    }
}
