// Kotlin binding test: checks the glue, not the engine (Rust tests cover
// that), in the real Mahak dialect and vocabulary: an offline write, a sync
// through a Kotlin HttpTransport against the reference server, the session,
// the pulled products, product details and people, a sale (an order of type
// 201 for the session's visitor and a pulled customer, with lines on a
// pulled product detail) written as one group and pushed with its ids mapped
// back, a change and a status listener firing, typed exceptions (invalid
// input, configuration, a refused dialect switch, a replica of another
// visitor, another user's changes on a shared device, a refused login), the
// export and discard of those changes, the log sink, a live query (its first
// result, its final one after a write and a sync, cancel), the server's clock
// (a skew past the threshold warns), and `use {}` destroying the engine. Run
// by bindings/scripts/test-kotlin.sh with the server URL (the
// reference server with --admin) as argument.

import com.mahak.rowsync.*
import java.net.HttpURLConnection
import java.net.URI
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger

var failures = 0

/** The integer after the first `"key":` in a record's JSON, or null. */
fun jsonLong(json: String?, key: String): Long? =
    Regex("\"$key\":(-?\\d+)").find(json ?: "")?.groupValues?.get(1)?.toLong()

/** POSTs `body` to the reference server's admin interface. */
fun admin(url: String, path: String, body: String) {
    val conn = URI("$url/admin/$path").toURL().openConnection() as HttpURLConnection
    conn.requestMethod = "POST"
    conn.doOutput = true
    conn.setRequestProperty("Content-Type", "application/json")
    conn.outputStream.use { it.write(body.toByteArray()) }
    check(conn.responseCode == 200, "admin $path answered ${conn.responseCode}")
    conn.inputStream.use { it.readBytes() }
}

fun check(cond: Boolean, what: String) {
    if (!cond) {
        System.err.println("FAIL: $what")
        failures++
    }
}

class JdkTransport : HttpTransport {
    val calls = AtomicInteger()

    override fun send(request: TransportRequest): TransportResponse {
        calls.incrementAndGet()
        try {
            val conn = URI(request.url).toURL().openConnection() as HttpURLConnection
            conn.requestMethod = request.method
            for (h in request.headers) conn.setRequestProperty(h.name, h.value)
            if (request.body.isNotEmpty()) {
                conn.doOutput = true
                conn.outputStream.use { it.write(request.body) }
            }
            val status = conn.responseCode
            val stream = if (status >= 400) conn.errorStream else conn.inputStream
            val body = stream?.use { it.readBytes() } ?: ByteArray(0)
            val headers = conn.headerFields
                .filterKeys { it != null }
                .flatMap { (k, vs) -> vs.map { HttpHeader(k, it) } }
            return TransportResponse(status.toUShort(), headers, body)
        } catch (e: java.net.ConnectException) {
            throw TransportFailure.Connect(e.toString())
        } catch (e: java.io.IOException) {
            throw TransportFailure.Io(e.toString())
        }
    }
}

class CountingListener : ChangeListener {
    val batches = AtomicInteger()
    override fun onChange(changes: List<ChangeBatch>) {
        batches.addAndGet(changes.size)
    }
}

class RecordingQuery : QueryListener {
    val results = java.util.concurrent.LinkedBlockingQueue<List<String>>()
    val errors = AtomicInteger()
    override fun onResult(records: List<String>) {
        results.add(records)
    }
    override fun onError(error: RowsyncException) {
        errors.incrementAndGet()
    }
}

/** The first result of a new watch, taken once every earlier run is over
 *  (the engine runs watches in the order they were made). */
fun barrier(e: RowsyncEngine) {
    val l = RecordingQuery()
    e.watch(RecordQuery(collection = "checklists"), l).use {
        check(l.results.poll(60, java.util.concurrent.TimeUnit.SECONDS) != null, "a barrier's first result")
    }
}

/** The newest result `l` holds, or `first`. */
fun newest(l: RecordingQuery, first: List<String>?): List<String>? {
    var out = first
    while (true) out = l.results.poll() ?: return out
}

class RecordingStatus : StatusListener {
    val seen: MutableList<ConnectionStatus> = Collections.synchronizedList(mutableListOf())
    override fun onStatus(status: ConnectionStatus) {
        seen.add(status)
    }
}

class ListSink : LogSink {
    val lines: MutableList<String> = Collections.synchronizedList(mutableListOf())
    override fun log(level: LogLevel, target: String, message: String) {
        lines.add("$level $target $message")
    }
}

fun main(args: Array<String>) {
    val url = args.getOrNull(0) ?: error("usage: Test BASE_URL")
    val engine = RowsyncEngine.open(":memory:", null)
    engine.use { e ->
        val changes = CountingListener()
        val sub = e.subscribeChanges(changes)
        val status = RecordingStatus()
        val statusSub = e.subscribeStatus(status)
        check(status.seen.firstOrNull() == ConnectionStatus.Unknown, "status listener gets the state at once")

        // Offline write.
        val created = e.create("people", """{"personCode": 8001, "Name": "Kotlin customer", "mobile": "0912"}""")
        check(created.contains("personClientId"), "created record has a client id")
        check(created.contains("\"name\""), "stored in camelCase")
        check(changes.batches.get() >= 1, "change listener fired")

        // A group that fails stores nothing: a line with no order.
        try {
            e.writeGroup(
                listOf(
                    WriteOp.Create("orders", """{"orderType": 201}""", null),
                    WriteOp.Create("orderDetails", """{"productDetailId": 1, "count1": 2}""", null),
                ),
            )
            check(false, "an order line with no order must throw")
        } catch (ex: RowsyncException.InvalidInput) {
            check(ex.collection == "orderDetails", "InvalidInput names the line's collection")
        }
        check(e.count("orders", true) == 0uL, "the failed group's order was not stored")

        // Typed exceptions.
        try {
            e.create("noSuchCollection", "{}")
            check(false, "unknown collection must throw")
        } catch (ex: RowsyncException.InvalidInput) {
            check(ex.collection == "noSuchCollection", "InvalidInput names the collection")
        }
        try {
            e.create("products", "{not json")
            check(false, "bad JSON must throw")
        } catch (ex: RowsyncException.InvalidInput) {
            check(ex.field == "record", "bad JSON is reported on the record")
        }
        try {
            e.sync()
            check(false, "sync without a URL must throw")
        } catch (ex: RowsyncException.Config) {
        }

        // The record's defaults are the core's, in the real dialect.
        check(
            defaultSettings(url) == EngineSettings(baseUrl = url, dialect = Dialect.MAHAK),
            "defaultSettings is EngineSettings' defaults in the mahak dialect",
        )

        // Sync through the app's own HTTP stack, with a log sink.
        val settings = defaultSettings(url).copy(maxAttempts = 2u)
        e.configure(settings)
        check(e.settings().dialect == Dialect.MAHAK, "the real dialect by default")
        check(e.session() == null, "no session before the first login")
        e.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))
        val transport = JdkTransport()
        e.setTransport(transport)
        val sink = ListSink()
        e.setLogSink(sink, LogLevel.DEBUG)
        val report = e.sync()
        check(report.pushed == 1uL, "the customer pushed (got ${report.pushed})")
        check(report.idMappings.any { it.collection == "people" }, "the customer's id mapped")
        check(report.collections.any { it.collection == "productDetails" && it.pulled > 0uL }, "product details pulled")
        check(transport.calls.get() >= 2, "the Kotlin transport carried the calls")
        check(sink.lines.any { it.contains("SaveAllData") }, "log sink got the save call")
        check(sink.lines.none { it.contains("pass1") }, "no password in the logs")
        check(status.seen.any { it == ConnectionStatus.Online }, "status listener saw Online")
        check(e.syncLog(50u).any { it.endpoint == "GetAllData" }, "sync log readable")
        val m = report.metrics
        check(m.requests == report.pullRequests + report.pushRequests + m.loginRequests + m.retries.total, "requests add up (${m.requests})")
        check(m.requests == transport.calls.get().toULong(), "one request per call of the app's transport")
        check(m.bytesReceived > 0uL && m.wireBytesReceived == m.bytesReceived, "an app's transport reports what it hands over")

        // The login's session: the visitor orders carry.
        val session = e.session()
        check(session != null && session.visitorId > 0 && session.databaseId == 1001L, "the session names the visitor and the database")
        val visitor = session?.visitorId ?: 0L
        val picture = e.absoluteUrl("/Files/p 1.jpg")
        check(picture.startsWith("http://127.0.0.1:") && !picture.contains("/API/") && picture.endsWith("/Files/p%201.jpg"), "a relative picture URL made absolute: " + picture)
        // The picture cache: an in-memory replica has none until a directory
        // is set; then the pictures come through the app's transport.
        val pictureId = jsonLong(e.list("pictures", ListQuery(limit = 1uL)).records.firstOrNull(), "pictureId") ?: 0L
        check(pictureId > 0, "a picture record pulled")
        check(e.picturePath(pictureId) == null, "no picture file without a cache directory")
        val picturesDir = java.nio.file.Files.createTempDirectory("rowsync-kotlin-pictures")
        e.configure(e.settings().copy(pictureDir = picturesDir.toString()))
        val pictures = e.syncPictures()
        check(pictures.fetched >= 1uL && pictures.failed == 0uL, "pictures fetched: $pictures")
        val picturePath = e.picturePath(pictureId)
        check(
            picturePath != null && picturePath.startsWith(picturesDir.toString()) && java.io.File(picturePath).length() > 0,
            "picturePath after the pictures were fetched: $picturePath",
        )
        picturesDir.toFile().deleteRecursively()
        val st = e.status()
        check(st.dialect == Dialect.MAHAK, "status names the dialect")
        check(st.session == session, "status carries the session")
        check(st.counts.pending == 0uL && st.counts.inDoubt == 0uL, "nothing pending or in doubt")

        // The real vocabulary, pulled.
        val product = e.list("products", ListQuery(limit = 1uL)).records.firstOrNull()
        check((jsonLong(product, "productId") ?: 0) > 0, "a product, in camelCase")
        val detail = e.list("productDetails", ListQuery(limit = 1uL)).records.firstOrNull()
        val detailId = jsonLong(detail, "productDetailId") ?: 0L
        val price = jsonLong(detail, "price1") ?: 0L
        check(detailId > 0 && price >= 0, "a product detail with its price")
        val customer = e.list("people", ListQuery(limit = 100uL)).records
            .firstOrNull { (jsonLong(it, "personId") ?: 0) > 0 && !it.contains("Kotlin customer") }
        val customerId = jsonLong(customer, "personId") ?: 0L
        check(customerId > 0, "a customer pulled")

        // A sale: the order and its lines as one group, the lines linked to
        // the order by the group; one line written in PascalCase.
        val sale = e.writeGroup(
            listOf(
                WriteOp.Create("orders", """{"orderType": 201, "visitorId": $visitor, "personId": $customerId, "description": "Kotlin sale"}""", null),
                WriteOp.Create("orderDetails", """{"productDetailId": $detailId, "count1": 2, "price": $price}""", 0u),
                WriteOp.Create("orderDetails", """{"ProductDetailId": $detailId, "Count1": 1.5, "Price": $price}""", 0u),
            ),
        )
        val orderCid = jsonLong(sale[0], "orderClientId") ?: 0L
        val lineCids = sale.drop(1).map { jsonLong(it, "orderDetailClientId") ?: 0L }
        check(orderCid != 0L && sale.drop(1).all { jsonLong(it, "orderClientId") == orderCid }, "the group linked the lines to their order")
        check(sale[2]?.contains("\"count1\":1.5") == true, "a PascalCase write stored in camelCase")

        // A stock check before the sale: the chosen collections now, with
        // their links, nothing pushed; an unknown one is InvalidInput.
        val stock = e.syncCollections(listOf("products"))
        check(stock.pushed == 0uL && stock.pushRequests == 0uL, "syncCollections pushes nothing")
        check(stock.pulledCollections.contains("visitorProducts") && !stock.pulledCollections.contains("people"), "the chosen collections with their links (${stock.pulledCollections})")
        check(e.status().counts.pending == 3uL, "the sale still waits")
        try {
            e.syncCollections(listOf("products", "stock"))
            check(false, "an unknown collection must throw")
        } catch (ex: RowsyncException.InvalidInput) {
            check(ex.collection == "stock", "InvalidInput names the collection")
        }

        val pushed = e.sync()
        check(pushed.pushed == 3uL, "the order and its two lines pushed (got ${pushed.pushed})")
        check(pushed.deadLetters == 0uL, "nothing parked")
        val orderMap = pushed.idMappings.firstOrNull { it.collection == "orders" && it.clientId == orderCid }
        check(orderMap != null, "the order's id mapped")
        check(
            lineCids.all { cid -> pushed.idMappings.any { it.collection == "orderDetails" && it.clientId == cid } },
            "the lines' ids mapped",
        )
        val order = orderMap?.let { e.get("orders", RecordKey.Server(it.serverId)) }
        check(jsonLong(order, "orderClientId") == orderCid, "the order readable by its server id")
        check(jsonLong(order, "visitorId") == visitor && jsonLong(order, "personId") == customerId, "the order names its visitor and customer")
        val line = e.get("orderDetails", RecordKey.Client(lineCids[0]))
        check(orderMap != null && jsonLong(line, "orderId") == orderMap.serverId, "the line names its order's server id")
        check(e.status().counts.pending == 0uL, "nothing pending after sync")
        val totals = e.metrics()
        check(totals.syncs == 4uL && totals.failedSyncs == 1uL, "four syncs counted, the unconfigured one failed (${totals.syncs})")
        check(totals.totals.requests == report.metrics.requests + stock.metrics.requests + pushed.metrics.requests, "the totals add the reports up")
        check(totals.pushed == 4uL && totals.collections.any { it.collection == "orders" && it.pushed == 1uL }, "pushed records per collection")
        val why = e.explain("orderDetails", RecordKey.Client(lineCids[0]))
        check(why.contains("\"state\":\"synced\"") && why.contains("\"words\""), "explain: the line is synced ($why)")
        check(e.explain("orders", RecordKey.Server(424242L)).contains("never_seen"), "explain: never seen")

        // A live query: the customer's orders, newest first, told at once
        // and after the sale below is written and synced; a query of a
        // collection nobody touches never runs again; a bad query throws.
        val q = RecordQuery(collection = "orders", filtersJson = """{"personId": $customerId}""", orderBy = "orderClientId", descending = true, limit = 50u)
        val orders = RecordingQuery()
        val banks = RecordingQuery()
        val live = e.watch(q, orders)
        val quiet = e.watch(RecordQuery(collection = "banks"), banks)
        val first = orders.results.poll(60, java.util.concurrent.TimeUnit.SECONDS)
        check(first == e.query(q), "a watch's first result comes at once")
        try {
            e.watch(RecordQuery(collection = "noSuchCollection"), RecordingQuery())
            check(false, "a watch of an unknown collection must throw")
        } catch (ex: RowsyncException.InvalidInput) {
        }
        try {
            e.watch(RecordQuery(collection = "orders", orderBy = "not a field"), RecordingQuery())
            check(false, "a bad field must throw")
        } catch (ex: RowsyncException.InvalidInput) {
            check(ex.field == "not a field", "InvalidInput names the field")
        }
        e.writeGroup(
            listOf(
                WriteOp.Create("orders", """{"orderType": 201, "visitorId": $visitor, "personId": $customerId, "description": "watched"}""", null),
                WriteOp.Create("orderDetails", """{"productDetailId": $detailId, "count1": 1, "price": $price}""", 0u),
            ),
        )
        e.sync()
        barrier(e)
        val last = newest(orders, first)
        check(last == e.query(q) && last?.first()?.contains("watched") == true, "the watch's last result is the final one")
        check(live.runs() >= 2uL && quiet.runs() == 1uL, "only the orders' query ran again (${live.runs()}, ${quiet.runs()})")
        check(orders.errors.get() == 0, "no failed run")
        live.cancel()
        check(!live.isActive(), "a cancelled watch is inactive")
        e.create("orders", """{"orderType": 201, "visitorId": $visitor, "personId": $customerId}""")
        barrier(e)
        check(orders.results.isEmpty(), "no result after cancel")
        live.close()
        quiet.close()

        // A photo of the signed invoice: a picture record, its file queued
        // (sent after the picture's save, progress on the status listener),
        // and a dispute; a file over the limit throws FileTooLarge.
        val pic = e.create("pictures", """{"fileName": "signed.jpg"}""")
        val picKey = RecordKey.Client(jsonLong(pic, "pictureClientId") ?: 0)
        e.configure(e.settings().copy(maxUploadBytes = 4uL))
        try {
            e.queueUploadBytes("pictures", picKey, byteArrayOf(1, 2, 3, 4, 5), "signed.jpg")
            check(false, "a file over the limit must throw")
        } catch (ex: RowsyncException.FileTooLarge) {
            check(ex.size == 5uL && ex.limit == 4uL, "FileTooLarge names the size and the limit")
        }
        e.configure(e.settings().copy(maxUploadBytes = 1048576uL))
        val photo = java.nio.file.Files.createTempFile("signed", ".jpg")
        java.nio.file.Files.write(photo, byteArrayOf(-1, -40, -1, -32, 7, 7, 7))
        val uploadId = e.queueUploadFile("pictures", picKey, photo.toString(), "signed.jpg")
        java.nio.file.Files.delete(photo)
        check(e.tasks().single().status == TaskStatus.WaitingForRecord, "the upload waits for its picture's save")
        check(e.status().uploads.single().id == uploadId, "status lists the upload")
        e.solveOrderDispute(listOf(OrderDispute(orderId = 501L, code = 2L)))
        val sent = e.sync()
        check(sent.uploaded == 1uL && sent.disputesSent == 1uL, "the upload and the dispute sent")
        check(e.tasks().isEmpty(), "the queue is empty")
        check(status.seen.any { it is ConnectionStatus.Uploading && it.uploadId == uploadId }, "progress on the status listener")
        val uploaded = e.get("pictures", picKey) ?: ""
        check(uploaded.contains("\"url\":\"/api/v3/Content/Images/all/") && uploaded.contains("\"pictureHash\":\""), "the answer's FileUrl and FileHash on the picture ($uploaded)")
        check(e.status().counts.pending == 0uL, "the picture's url is the server's: nothing pending")

        // The replica holds mahak data: another dialect is refused.
        try {
            e.configure(settings.copy(dialect = Dialect.DOCUMENTED))
            check(false, "a dialect switch on a filled replica must throw")
        } catch (ex: RowsyncException.Config) {
            check(ex.detail.contains("dialect"), "Config names the dialect")
        }

        // The server now says this login is another visitor: the replica is
        // not touched and the app decides.
        admin(url, "session", """{"visitorId": ${visitor + 68}}""")
        e.disconnect()
        e.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))
        try {
            e.sync()
            check(false, "another visitor must throw")
        } catch (ex: RowsyncException.ReplicaMismatch) {
            check(ex.what == "visitorId" && ex.replica == visitor && ex.server == visitor + 68, "ReplicaMismatch names both visitors")
        }
        check(e.count("orders", false) > 0uL, "the replica kept its orders")
        admin(url, "session", """{"visitorId": $visitor}""")
        e.sync()

        // The server's clock: on time, the skew is about 0 and nothing warns;
        // 20 minutes ahead, the summary and the status warn and the status
        // listener is told ClockSkewed once, while the state stays Online.
        // Nothing is refused. (Real time drifts: a tolerance, not seconds.)
        val onTime = e.status().clockSkewSeconds
        check(onTime != null && Math.abs(onTime) <= 5 && !e.status().clockSkewWarning, "a server on time: no warning ($onTime)")
        check(e.settings().clockSkewWarningSeconds == 780uL, "13 minutes by default")
        admin(url, "clock", """{"offsetSeconds": 1200}""")
        e.disconnect()
        e.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))
        val skewed = try { e.sync() } finally { admin(url, "clock", """{"offsetSeconds": 0}""") }
        val skew = skewed.clockSkewSeconds
        check(skew != null && Math.abs(skew + 1200) <= 5 && skewed.clockSkewWarning, "20 minutes behind the server warns ($skew)")
        check(status.seen.any { it is ConnectionStatus.ClockSkewed && Math.abs(it.skewSeconds + 1200) <= 5 }, "the status listener was told ClockSkewed")
        check(e.status().connection == ConnectionStatus.Online && e.status().clockSkewWarning, "the state stays Online; the status warns")
        // The device changes hands: user2's sync sends only user2's changes
        // and throws before user1's, which are exported, then discarded.
        e.create("people", """{"personCode": 8101, "name": "user1's customer"}""")
        e.setCredentials(LoginCredentials("user2", "pass2", 1001L, 2002L))
        try {
            e.sync()
            check(false, "user1's change must stop user2's sync")
        } catch (ex: RowsyncException.PendingChangesOfAnotherUser) {
            check(ex.user == "user1" && ex.count == 1uL, "PendingChangesOfAnotherUser names user1 and 1")
        }
        check(e.status().pendingByUser.single().user == "user1", "status names user1's change")
        try {
            e.discardPending("user1")
            check(false, "a discard before an export must throw")
        } catch (ex: RowsyncException.PendingChanges) {
        }
        check(e.exportPending("user1").contains("user1's customer"), "the export holds the change")
        check(e.discardPending("user1") == 1uL, "one change discarded")
        check(e.discardedChanges().contains("user1's customer"), "the trail keeps it")
        e.sync()
        e.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))

        // Wrong password: AuthFailed.
        e.setCredentials(LoginCredentials("user1", "wrong", 1001L, 2002L))
        try {
            e.sync()
            check(false, "wrong password must throw")
        } catch (ex: RowsyncException.AuthFailed) {
        }

        // Cancelled listeners stay quiet.
        sub.cancel()
        check(!sub.isActive(), "cancelled handle is inactive")
        val before = changes.batches.get()
        e.create("people", """{"personCode": 8002, "name": "quiet"}""")
        check(changes.batches.get() == before, "no call after cancel")
        statusSub.close()
        sub.close()
    }
    // `use {}` destroyed the engine: calls now fail on the Kotlin side.
    try {
        engine.status()
        check(false, "engine must be closed after use {}")
    } catch (ex: IllegalStateException) {
    }

    // An encrypted replica: the key from the Android Keystore would be 32
    // bytes like these. The text is not in the file; a wrong key is WrongKey.
    val dir = java.nio.file.Files.createTempDirectory("rowsync-kt")
    val path = dir.resolve("encrypted.db").toString()
    val key = ByteArray(32) { (it * 5 + 3).toByte() }
    RowsyncEngine.openEncrypted(path, DatabaseKey.Raw(key), null).use { enc ->
        enc.create("people", "{\"name\": \"Maryam Ahmadi\", \"mobile\": \"09127778899\"}")
        check(enc.count("people", false) == 1uL, "written into the encrypted replica")
    }
    val raw = java.io.File(path).readBytes()
    check(!String(raw, Charsets.ISO_8859_1).contains("09127778899"), "no record text in the file")
    try {
        RowsyncEngine.openEncrypted(path, DatabaseKey.Passphrase("not the key"), null).use { }
        check(false, "a wrong key must throw")
    } catch (ex: RowsyncException.WrongKey) {
    }
    try {
        RowsyncEngine.open(path, null).use { }
        check(false, "a missing key must throw")
    } catch (ex: RowsyncException.WrongKey) {
    }
    RowsyncEngine.openEncrypted(path, DatabaseKey.Raw(key), null).use { enc ->
        check(enc.count("people", false) == 1uL, "the right key reads it back")
    }
    dir.toFile().deleteRecursively()

    if (failures > 0) {
        System.err.println("$failures check(s) failed")
        kotlin.system.exitProcess(1)
    }
    println("Kotlin test: all checks passed")
}
