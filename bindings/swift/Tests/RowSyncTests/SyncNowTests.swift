// Sync now for chosen collections, and the sync metrics (issue 26), through
// the Swift face: a stock check before a sale pulls `products` with its
// link collections and pushes nothing, an unknown collection is
// `InvalidInput`, a retried 503 is counted by cause, and the running
// totals add the reports up and stay in the replica.

import Foundation
import RowSync
import XCTest

final class SyncNowTests: ServerTestCase {
    func testAStockCheckPullsTheChosenCollectionsAndPushesNothing() async throws {
        let engine = try loggedIn("now.db")
        let (visitor, detail) = try await start(engine)
        let customer = try engine.list(collection: "people", query: ListQuery(limit: 100)).records
            .first { (int($0, "personId") ?? 0) > 0 }
        let customerId = try XCTUnwrap(int(customer, "personId"))
        _ = try engine.writeGroup(ops: [
            .create(
                collection: "orders",
                recordJson:
                    #"{"orderType": 201, "visitorId": \#(visitor), "personId": \#(customerId)}"#,
                parentOp: nil),
            .create(
                collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(detail), "count1": 1, "price": 1000}"#,
                parentOp: 0),
        ])
        try await injectFault("GetAllData", #"{"status": [503, "empty"]}"#)

        let stock = try await engine.syncCollections(collections: ["products"])
        XCTAssertEqual(stock.pushed, 0)
        XCTAssertEqual(stock.pushRequests, 0)
        XCTAssertTrue(stock.pulledCollections.contains("visitorProducts"), "\(stock)")
        XCTAssertFalse(stock.pulledCollections.contains("people"))
        XCTAssertEqual(try engine.status().counts.pending, 2, "the sale still waits")
        XCTAssertEqual(stock.metrics.retries.serverError, 1, "the 503 retried")
        XCTAssertEqual(
            stock.metrics.requests,
            stock.pullRequests + stock.metrics.loginRequests + stock.metrics.retries.total)

        do {
            _ = try await engine.syncCollections(collections: ["stock"])
            XCTFail("an unknown collection must throw")
        } catch RowsyncError.InvalidInput(let collection, _, _) {
            XCTAssertEqual(collection, "stock")
        }

        let pushed = try await engine.sync()
        XCTAssertEqual(pushed.pushed, 2)
        let totals = try engine.metrics()
        XCTAssertEqual(totals.syncs, 3)
        XCTAssertEqual(totals.totals.retries.serverError, 1)
        XCTAssertGreaterThan(totals.totals.bytesReceived, 0)
        XCTAssertTrue(totals.collections.contains { $0.collection == "orders" && $0.pushed == 1 })

        // The totals are the replica's.
        let again = try await RowsyncEngine.open(path: path("now.db"), settings: nil)
        XCTAssertEqual(try again.metrics(), totals)
    }
}
