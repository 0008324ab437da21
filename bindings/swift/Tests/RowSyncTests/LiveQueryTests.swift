// A live query from Swift, over HTTP against the reference server: an
// `AsyncStream` of a query's records that shows the first result at once
// and the final one after a sale is written and synced, a watch of a
// collection nobody touches that never runs again, a bad query that throws
// before anything runs, and a stream whose end stops its watch.

import Foundation
import XCTest

// Testable: the stream's handle is internal.
@testable import RowSync

/// Counts the results a watch was told.
final class CountingQuery: QueryListener, Sendable {
    let results = Locked(0)
    func onResult(records: [String]) { results.with { $0 += 1 } }
    func onError(error: RowsyncError) {}
}

final class LiveQueryTests: ServerTestCase {
    func testAWatchStreamsTheRecordsAndEndsWithItsConsumer() async throws {
        let engine = try loggedIn()
        let (visitor, detail) = try await start(engine)
        let people = try engine.list(collection: "people", query: ListQuery(limit: 10)).records
        let person = try XCTUnwrap(int(people.first, "personId"))
        let query = RecordQuery(
            collection: "orders", filtersJson: #"{"personId": \#(person)}"#,
            orderBy: "orderClientId", descending: true, limit: 50)

        do {
            _ = try engine.watch(RecordQuery(collection: "noSuchCollection"))
            XCTFail("an unknown collection must throw")
        } catch RowsyncError.InvalidInput(let collection, _, _) {
            XCTAssertEqual(collection, "noSuchCollection")
        }
        do {
            _ = try engine.watch(RecordQuery(collection: "orders", orderBy: "not a field"))
            XCTFail("a bad field must throw")
        } catch RowsyncError.InvalidInput(_, let field, _) {
            XCTAssertEqual(field, "not a field")
        }

        let banks = CountingQuery()
        let quiet = try engine.watch(query: RecordQuery(collection: "banks"), listener: banks)
        let (stream, handle) = try engine.watched(query, bufferSize: 4)
        let latest = Locked<[String]?>(nil)
        let consumer = Task {
            for await records in stream { latest.with { $0 = records } }
        }
        let expectedFirst = try engine.query(query: query)
        let first = await waitUntil { latest.get == expectedFirst }
        XCTAssertTrue(first, "the first result at once")

        _ = try engine.writeGroup(ops: [
            .create(
                collection: "orders",
                recordJson:
                    #"{"orderType": 201, "visitorId": \#(visitor), "personId": \#(person), "description": "watched"}"#,
                parentOp: nil),
            .create(
                collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(detail), "count1": 1, "price": 1000}"#,
                parentOp: 0),
        ])
        _ = try await engine.sync()
        let expected = try engine.query(query: query)
        XCTAssertTrue(expected.first?.contains("watched") == true)
        let final = await waitUntil { latest.get == expected }
        XCTAssertTrue(final, "the last result is the final one")
        XCTAssertGreaterThanOrEqual(handle.runs(), 2)
        XCTAssertEqual(quiet.runs(), 1, "nobody touched banks")
        XCTAssertEqual(banks.results.get, 1)

        XCTAssertTrue(handle.isActive())
        consumer.cancel()
        await consumer.value
        XCTAssertFalse(handle.isActive(), "a cancelled consumer stops the watch")
        quiet.cancel()
        XCTAssertFalse(quiet.isActive())
    }
}
