// Kotlin binding test: checks the glue, not the engine (Rust tests cover
// that): an offline write, a grouped write, a change and a status listener
// firing, typed exceptions, a sync through a Kotlin HttpTransport against the
// reference server, the log sink, and `use {}` destroying the engine.
// Run by bindings/scripts/test-kotlin.sh with the server URL as argument.

import com.mahak.rowsync.*
import java.net.HttpURLConnection
import java.net.URI
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger

var failures = 0

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

        // A grouped write: an order and its line, linked by the group.
        val group = e.writeGroup(
            listOf(
                WriteOp.Create("orders", """{"orderType": 201}""", null),
                WriteOp.Create("orderDetails", """{"productDetailId": 1, "count1": 2, "price": 47500}""", 0u),
            ),
        )
        check(group.size == 2 && group[1]?.contains("orderClientId") == true, "group linked the line to its order")

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

        // Sync through the app's own HTTP stack, with a log sink.
        e.configure(defaultSettings(url).copy(maxAttempts = 2u))
        e.setCredentials(LoginCredentials("user1", "pass1", 1001L, 2002L))
        val transport = JdkTransport()
        e.setTransport(transport)
        val sink = ListSink()
        e.setLogSink(sink, LogLevel.DEBUG)
        val report = e.sync()
        check(report.pushed >= 3uL, "three changes pushed (got ${report.pushed})")
        check(report.deadLetters == 0uL, "nothing parked")
        check(transport.calls.get() >= 2, "the Kotlin transport carried the calls")
        check(sink.lines.any { it.contains("SaveAllData") }, "log sink got the save call")
        check(sink.lines.none { it.contains("pass1") }, "no password in the logs")
        check(status.seen.any { it == ConnectionStatus.Online }, "status listener saw Online")
        check(e.status().counts.pending == 0uL, "nothing pending after sync")
        check(e.syncLog(50u).any { it.endpoint == "GetAllData" }, "sync log readable")
        val session = e.session()
        check(session != null && session.visitorId > 0, "the login's session names the visitor")
        check(e.status().dialect == Dialect.MAHAK, "the real dialect by default")

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

    if (failures > 0) {
        System.err.println("$failures check(s) failed")
        kotlin.system.exitProcess(1)
    }
    println("Kotlin test: all checks passed")
}
