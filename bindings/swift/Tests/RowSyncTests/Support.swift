// What the tests share: the reference server's URL (ROWSYNC_TEST_SERVER,
// set by bindings/scripts/test-swift.sh), its admin interface over HTTP, a
// temporary directory per test for its replica files, a logged-in engine,
// and reading fields out of the JSON text records cross as.

import Foundation
import RowSync
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A test that needs the reference server, and a directory of its own.
class ServerTestCase: XCTestCase {
    /// Removed after the test.
    private(set) var dir = URL(fileURLWithPath: "/nonexistent")

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("rowsync-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        // A fault a test injected and did not consume must not reach the next.
        if !serverURL.isEmpty {
            _ = try? adminSync("POST", "faults/clear")
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// The reference server's base URL; a failure (never a skip) without it.
    var serverURL: String {
        ProcessInfo.processInfo.environment["ROWSYNC_TEST_SERVER"] ?? ""
    }

    func requireServer() throws -> String {
        let url = serverURL
        if url.isEmpty {
            XCTFail("ROWSYNC_TEST_SERVER is not set: run bindings/scripts/test-swift.sh")
            throw TestError("no server")
        }
        return url
    }

    /// A replica file in this test's directory.
    func path(_ name: String) -> String {
        dir.appendingPathComponent(name).path
    }

    /// The test settings: the real dialect, few retries, short waits.
    func settings() throws -> EngineSettings {
        var s = defaultSettings(baseUrl: try requireServer())
        s.maxAttempts = 2
        s.baseDelayMs = 20
        s.maxDelayMs = 100
        return s
    }

    /// An engine on a new replica of this test, configured and logged in
    /// (user1, whose password the engine sends as its MD5).
    func loggedIn(_ name: String = "replica.db") throws -> RowsyncEngine {
        let engine = try RowsyncEngine.open(path: path(name), settings: try settings())
        try engine.setCredentials(credentials: credentials())
        return engine
    }

    /// A first sync of `engine`, then the visitor the server named and the
    /// first product detail pulled: what a sale needs.
    func start(_ engine: RowsyncEngine) async throws -> (visitor: Int64, detail: Int64) {
        _ = try await engine.sync()
        let visitor = try XCTUnwrap(try engine.session()).visitorId
        let detail = try engine.list(collection: "productDetails", query: ListQuery(limit: 1))
            .records.first
        return (visitor, try XCTUnwrap(int(detail, "productDetailId")))
    }

    func credentials(password: String = "pass1") -> LoginCredentials {
        LoginCredentials(
            username: "user1", password: password, databaseId: 1001, packageNumber: 2002)
    }

    /// A call to the server's admin interface (`/admin/...` under the base
    /// URL); fails the test on a status other than 200. Returns `Data`.
    @discardableResult
    func admin(_ method: String, _ route: String, _ body: String? = nil) async throws -> Any? {
        let url = try requireServer()
        let data = try await offThread { try adminCall(url, method, route, body) }
        return try adminData(data)
    }

    /// The blocking form of `admin`, for non-async code.
    @discardableResult
    func adminSync(_ method: String, _ route: String, _ body: String? = nil) throws -> Any? {
        try adminData(try adminCall(serverURL, method, route, body))
    }

    /// The server's records of a collection (deleted ones included).
    func serverRecords(_ collection: String) async throws -> [[String: Any]] {
        (try await admin("GET", "records/\(collection)") as? [[String: Any]]) ?? []
    }

    /// Injects `fault` (the admin interface's JSON spelling) into the next
    /// `times` calls of `endpoint`.
    func injectFault(_ endpoint: String, _ fault: String, times: Int = 1) async throws {
        try await admin(
            "POST", "faults/inject",
            #"{"endpoint": "\#(endpoint)", "fault": \#(fault), "times": \#(times)}"#)
    }
}

/// One call of the admin interface: its answer's body, or an error for a
/// status other than 200.
func adminCall(_ base: String, _ method: String, _ route: String, _ body: String?) throws -> Data {
    let (status, data) = try httpCall(
        method: method, url: "\(base)/admin/\(route)", headers: [:],
        body: body.map { Data($0.utf8) })
    guard status == 200 else {
        let text = String(decoding: data, as: UTF8.self)
        throw TestError("admin \(method) \(route) answered \(status): \(text)")
    }
    return data
}

/// The `data` of an admin answer's envelope.
func adminData(_ body: Data) throws -> Any? {
    let envelope = try JSONSerialization.jsonObject(with: body) as? [String: Any]
    return envelope?["data"] ?? envelope?["Data"]
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs blocking work (an HTTP call of the test's own) off the cooperative pool.
func offThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        DispatchQueue.global().async { c.resume(with: Result { try work() }) }
    }
}

/// One blocking HTTP call through URLSession. Returns the status and body.
/// For the tests' own calls and for the Swift transport: never on the
/// cooperative pool (it waits on a semaphore).
func httpCall(method: String, url: String, headers: [String: String], body: Data?) throws
    -> (Int, Data)
{
    let (status, _, data) = try httpCallWithHeaders(
        method: method, url: url, headers: headers, body: body)
    return (status, data)
}

/// Where an HTTP call got to.
final class CallBox: @unchecked Sendable {
    // Written once by URLSession's delegate queue before the semaphore is
    // signalled, read after the wait: the semaphore orders the two.
    var result: Result<(HTTPURLResponse, Data), Error> = .failure(TestError("no answer"))
}

func httpCallWithHeaders(method: String, url: String, headers: [String: String], body: Data?)
    throws -> (Int, [String: String], Data)
{
    guard let u = URL(string: url) else { throw TestError("bad URL \(url)") }
    var request = URLRequest(url: u, timeoutInterval: 30)
    request.httpMethod = method
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    request.httpBody = body
    let done = DispatchSemaphore(value: 0)
    let box = CallBox()
    URLSession.shared.dataTask(with: request) { data, response, error in
        if let error {
            box.result = .failure(error)
        } else if let http = response as? HTTPURLResponse {
            box.result = .success((http, data ?? Data()))
        }
        done.signal()
    }.resume()
    done.wait()
    let (response, data) = try box.result.get()
    var out: [String: String] = [:]
    for (k, v) in response.allHeaderFields {
        out["\(k)"] = "\(v)"
    }
    return (response.statusCode, out, data)
}

/// A record's JSON text as a dictionary (empty when it does not parse).
func object(_ json: String?) -> [String: Any] {
    guard let data = json?.data(using: .utf8),
        let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return [:] }
    return obj
}

/// An integer field of a record's JSON text, or nil.
func int(_ json: String?, _ key: String) -> Int64? {
    int(object(json)[key])
}

/// An integer out of a parsed JSON value, or nil.
func int(_ value: Any?) -> Int64? {
    switch value {
    case let i as Int: return Int64(i)
    case let i as Int64: return i
    case let n as NSNumber: return n.int64Value
    case let d as Double: return Int64(d)
    default: return nil
    }
}

/// A string field of a record's JSON text, or nil.
func string(_ json: String?, _ key: String) -> String? {
    object(json)[key] as? String
}

/// A value updated from the engine's threads and read by the test.
final class Locked<Value>: @unchecked Sendable {
    // Every access goes through `lock`.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func with<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
    var get: Value { with { $0 } }
}

/// The current thread's name (the engine names its own threads; Linux).
func currentThreadName() -> String {
    let name = try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
    return name?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
}

/// Polls `cond` until it holds or `seconds` pass.
func eventually(_ seconds: Double = 10, _ cond: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if cond() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return cond()
}

/// Polls `cond` until it holds or `seconds` pass, suspending in between.
func waitUntil(_ seconds: Double = 10, _ cond: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if cond() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return cond()
}
