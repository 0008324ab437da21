// A transport written in Swift (URLSession, from FoundationNetworking on
// Linux) carrying a whole sync in place of the built-in HTTP client, and
// its failures mapped onto `TransportFailure` so the engine keeps the
// changes and reports `.Offline`.

import Foundation
import RowSync
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Sends the engine's requests through URLSession. `send` is called on the
/// engine's syncing thread and may block until the response is complete.
final class URLSessionTransport: HttpTransport {
    let calls = Locked<[String]>([])

    func send(request: TransportRequest) throws -> TransportResponse {
        calls.with { $0.append(request.url) }
        var headers: [String: String] = [:]
        for h in request.headers { headers[h.name] = h.value }
        do {
            let (status, responseHeaders, body) = try httpCallWithHeaders(
                method: request.method, url: request.url, headers: headers,
                body: request.body.isEmpty ? nil : request.body)
            // URLSession hands over a decoded body: its encoding is gone.
            let forwarded = responseHeaders.filter {
                $0.key.lowercased() != "content-encoding" && $0.key.lowercased() != "content-length"
            }.map { HttpHeader(name: $0.key, value: $0.value) }
            return TransportResponse(status: UInt16(status), headers: forwarded, body: body)
        } catch let error as URLError {
            switch error.code {
            case .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed:
                throw TransportFailure.Connect(reason: "\(error.code)")
            case .timedOut:
                throw TransportFailure.Timeout(reason: "\(error.code)")
            default:
                throw TransportFailure.Io(reason: "\(error.code)")
            }
        }
    }
}

final class TransportTests: ServerTestCase {
    func testAWholeSyncGoesThroughASwiftTransport() async throws {
        let engine = try loggedIn()
        let transport = URLSessionTransport()
        try engine.setTransport(transport: transport)
        _ = try engine.create(
            collection: "people", recordJson: #"{"personCode": 9001, "Name": "Swift customer"}"#)
        let report = try await engine.sync()
        XCTAssertEqual(report.pushed, 1)
        XCTAssertTrue(report.idMappings.contains { $0.collection == "people" })
        XCTAssertTrue(
            report.collections.contains { $0.collection == "productDetails" && $0.pulled > 0 })
        let urls = transport.calls.get
        for endpoint in ["Login", "GetAllData", "SaveAllData"] {
            XCTAssertTrue(
                urls.contains { $0.contains(endpoint) }, "\(endpoint) through Swift: \(urls)")
        }
        // Every call of the sync went through it: the engine's log of
        // attempts and the transport's count of API calls agree; the
        // pictures' plain GETs after the sync went through it too.
        let attempts = try engine.syncLog(limit: 1000).count
        let pictures = urls.filter { $0.contains("/Content/Images/all/") }
        XCTAssertEqual(urls.count - pictures.count, attempts)
        XCTAssertEqual(UInt64(pictures.count), report.pictures.fetched)
        XCTAssertGreaterThan(report.pictures.fetched, 0)
        XCTAssertEqual(try engine.status().connection, .online)
    }

    func testATransportFailureIsOfflineAndKeepsTheChanges() async throws {
        // A port nothing listens on.
        var s = try settings()
        s.baseUrl = "http://127.0.0.1:9/API/v3"
        let engine = try await RowsyncEngine.open(path: path("down.db"), settings: s)
        try engine.setCredentials(credentials: credentials())
        let transport = URLSessionTransport()
        try engine.setTransport(transport: transport)
        _ = try engine.create(collection: "people", recordJson: #"{"name": "kept"}"#)
        do {
            _ = try await engine.sync()
            XCTFail("an unreachable server must throw")
        } catch let error as RowsyncError {
            guard case .Offline = error else { return XCTFail("expected Offline, got \(error)") }
            XCTAssertTrue(error.isTransient)
        }
        XCTAssertEqual(transport.calls.get.count, 2, "maxAttempts 2: two attempts")
        XCTAssertEqual(try engine.status().counts.pending, 1, "the change is kept")
        guard case .offline = try engine.status().connection else {
            return XCTFail("the status says offline")
        }
    }
}
