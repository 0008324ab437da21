// What happens to a change the server does not simply take: a refused
// line parked in the dead-letter queue with the server's own words, retried
// after a fix, another discarded; conflicts (the server wins for an order,
// fields merge for a person) and their log; a save whose answer was lost
// after the server applied it, booked once; and `explain` on a record
// pending, parked and synced.

import Foundation
import RowSync
import XCTest

final class OutcomeTests: ServerTestCase {
    /// Syncs, then returns the visitor and a pulled product detail's id.
    /// An order and a line that names a product but no product detail,
    /// which the server refuses. Returns both client ids.
    private func saleWithABadLine(_ engine: RowsyncEngine, visitor: Int64) throws -> (Int64, Int64)
    {
        let out = try engine.writeGroup(ops: [
            .create(
                collection: "orders", recordJson: #"{"orderType": 201, "visitorId": \#(visitor)}"#,
                parentOp: nil),
            .create(
                collection: "orderDetails",
                recordJson: #"{"productId": 8308737, "count1": 1, "price": 1200000}"#, parentOp: 0),
        ])
        return (
            try XCTUnwrap(int(out[0], "orderClientId")),
            try XCTUnwrap(int(out[1], "orderDetailClientId"))
        )
    }

    func testARefusedLineIsParkedWithTheServersWordsThenRetriedOrDiscarded() async throws {
        let engine = try loggedIn()
        let (visitor, detail) = try await start(engine)
        let (oc, lc) = try saleWithABadLine(engine, visitor: visitor)

        let report = try await engine.sync()
        XCTAssertEqual(report.pushed, 1, "the order saved")
        XCTAssertEqual(report.parked, 1, "the line parked")
        let order = try engine.get(collection: "orders", key: .client(id: oc))
        let orderId = try XCTUnwrap(int(order, "orderId"), "the saved order is confirmed")
        var letters = try engine.deadLetters()
        XCTAssertEqual(letters.count, 1)
        let letter = try XCTUnwrap(letters.first)
        // The server's text, as it sent it (the reference server answers a
        // line without a product detail with the real server's words).
        XCTAssertEqual(
            letter.reason.trimmingCharacters(in: .whitespaces),
            "ProductDetailId or IncomeId or ExpenseId is required")
        XCTAssertEqual(letter.field, "IncomeId,ExpenseId,ProductDetailId")
        XCTAssertEqual(letter.changes.map(\.collection), ["orderDetails"])
        XCTAssertEqual(letter.changes.first?.clientId, lc)
        XCTAssertEqual(try engine.status().counts.deadLetters, 1)
        let why = try engine.explain(collection: "orderDetails", key: .client(id: lc))
        XCTAssertTrue(why.contains(#""state":"parked""#), why)

        // The fix, then the retry: the line goes out linked to the order.
        _ = try engine.update(
            collection: "orderDetails", key: .client(id: lc),
            patchJson: #"{"productDetailId": \#(detail)}"#)
        try engine.retryDeadLetter(id: letter.id)
        let retried = try await engine.sync()
        XCTAssertEqual(retried.pushed, 1)
        XCTAssertEqual(try engine.deadLetters().count, 0)
        let lines = try await serverRecords("orderDetails").filter { int($0["orderId"]) == orderId }
        XCTAssertEqual(lines.count, 1)
        XCTAssertEqual(int(lines.first?["productDetailId"]), detail)
        let orders = try await serverRecords("orders").filter { int($0["orderClientId"]) == oc }
        XCTAssertEqual(orders.count, 1, "the order is never sent twice")

        // Another refused line, discarded: it goes, the server never had it.
        let (_, lc2) = try saleWithABadLine(engine, visitor: visitor)
        _ = try await engine.sync()
        letters = try engine.deadLetters()
        XCTAssertEqual(letters.count, 1)
        try engine.discardDeadLetter(id: try XCTUnwrap(letters.first).id)
        XCTAssertEqual(try engine.deadLetters().count, 0)
        XCTAssertNil(try engine.get(collection: "orderDetails", key: .client(id: lc2)))
        XCTAssertEqual(try engine.status().counts.pending, 0)
        XCTAssertEqual(try engine.status().counts.parked, 0)
        let stray = try await serverRecords("orderDetails").filter {
            int($0["orderDetailClientId"]) == lc2
        }
        XCTAssertTrue(stray.isEmpty)
        do {
            try engine.retryDeadLetter(id: letters[0].id)
            XCTFail("a discarded dead letter is gone")
        } catch RowsyncError.NotFound {
        }
    }

    func testTheServerWinsForAnOrderAndFieldsMergeForAPerson() async throws {
        let engine = try loggedIn()
        let (visitor, detail) = try await start(engine)
        let out = try engine.writeGroup(ops: [
            .create(
                collection: "orders",
                recordJson:
                    #"{"orderType": 201, "visitorId": \#(visitor), "description": "at the counter"}"#,
                parentOp: nil),
            .create(
                collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(detail), "count1": 1, "price": 500}"#,
                parentOp: 0),
        ])
        let oc = try XCTUnwrap(int(out[0], "orderClientId"))
        _ = try await engine.sync()
        let orderId = try XCTUnwrap(
            int(try engine.get(collection: "orders", key: .client(id: oc)), "orderId"))
        let person = try engine.list(collection: "people", query: ListQuery(limit: 100)).records
            .first { (int($0, "personId") ?? 0) > 0 }
        let personId = try XCTUnwrap(int(person, "personId"))

        // Both sides edit the order, and the person (one field on both
        // sides, one on each side only).
        _ = try engine.update(
            collection: "orders", key: .server(id: orderId),
            patchJson: #"{"description": "mine"}"#)
        _ = try engine.update(
            collection: "people", key: .server(id: personId),
            patchJson: #"{"mobile": "09120000001", "tell": "021-mine"}"#)
        try await admin("PATCH", "records/orders/\(orderId)", #"{"description": "the office's"}"#)
        try await admin(
            "PATCH", "records/people/\(personId)",
            #"{"mobile": "09120000002", "address": "Tehran, the office's"}"#)

        _ = try await engine.syncAll()
        let order = try engine.get(collection: "orders", key: .server(id: orderId))
        XCTAssertEqual(string(order, "description"), "the office's", "the server wins for an order")
        let merged = try engine.get(collection: "people", key: .server(id: personId))
        XCTAssertEqual(string(merged, "mobile"), "09120000002", "the same field: the server's")
        XCTAssertEqual(string(merged, "tell"), "021-mine", "a field only we changed: ours")
        XCTAssertEqual(string(merged, "address"), "Tehran, the office's")
        let onServer = try await serverRecords("people").first { int($0["personId"]) == personId }
        XCTAssertEqual(onServer?["tell"] as? String, "021-mine", "our side of the merge pushed")

        let log = try engine.conflicts()
        let orderConflict = try XCTUnwrap(log.first { $0.collection == "orders" })
        XCTAssertEqual(orderConflict.resolution, "server_wins")
        XCTAssertEqual(orderConflict.serverId, orderId)
        XCTAssertTrue(orderConflict.fields.contains("description"))
        XCTAssertEqual(string(orderConflict.localJson, "description"), "mine")
        XCTAssertEqual(string(orderConflict.serverJson, "description"), "the office's")
        let personConflict = try XCTUnwrap(log.first { $0.collection == "people" })
        XCTAssertEqual(personConflict.resolution, "field_merge")
        XCTAssertEqual(personConflict.fields, ["mobile"])
        XCTAssertEqual(try engine.clearConflicts(), UInt64(log.count))
        XCTAssertTrue(try engine.conflicts().isEmpty)
        XCTAssertEqual(try engine.status().counts.pending, 0)
    }

    func testASaveWhoseAnswerWasLostIsBookedOnce() async throws {
        let engine = try loggedIn()
        let (visitor, detail) = try await start(engine)
        let out = try engine.writeGroup(ops: [
            .create(
                collection: "orders", recordJson: #"{"orderType": 201, "visitorId": \#(visitor)}"#,
                parentOp: nil),
            .create(
                collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(detail), "count1": 3, "price": 700}"#,
                parentOp: 0),
        ])
        let oc = try XCTUnwrap(int(out[0], "orderClientId"))
        // The server applies the save, then the connection drops unanswered.
        try await injectFault("SaveAllData", #""lose_response_after_apply""#)
        var report: SyncSummary
        do {
            report = try await engine.sync()
        } catch RowsyncError.Offline {
            // The engine may leave the creates in doubt for the next sync.
            report = try await engine.sync()
        }
        XCTAssertEqual(report.deadLetters, 0)
        let orders = try await serverRecords("orders").filter { int($0["orderClientId"]) == oc }
        XCTAssertEqual(orders.count, 1, "the order booked once")
        let orderId = try XCTUnwrap(int(orders.first?["orderId"]))
        let lines = try await serverRecords("orderDetails").filter { int($0["orderId"]) == orderId }
        XCTAssertEqual(lines.count, 1, "the line booked once")
        XCTAssertEqual(
            int(try engine.get(collection: "orders", key: .client(id: oc)), "orderId"), orderId,
            "the server's id mapped back")
        let counts = try engine.status().counts
        XCTAssertEqual([counts.pending, counts.inDoubt, counts.parked], [0, 0, 0])
        // Another sync sends nothing again.
        _ = try await engine.sync()
        let again = try await serverRecords("orders").filter { int($0["orderClientId"]) == oc }
        XCTAssertEqual(again.count, 1)
        let requests = try await admin("GET", "requests") as? [[String: Any]] ?? []
        XCTAssertTrue(
            requests.contains { ($0["fault"] as? String)?.contains("lose") == true },
            "the fault was played")
    }

    func testExplainSaysPendingParkedAndSynced() async throws {
        let engine = try loggedIn()
        let (visitor, _) = try await start(engine)
        let person = try engine.create(collection: "people", recordJson: #"{"name": "walk-in"}"#)
        let pc = try XCTUnwrap(int(person, "personClientId"))
        let pending = object(try engine.explain(collection: "people", key: .client(id: pc)))
        XCTAssertEqual(pending["state"] as? String, "pending")
        XCTAssertFalse((pending["words"] as? String ?? "").isEmpty)

        let (_, lc) = try saleWithABadLine(engine, visitor: visitor)
        _ = try await engine.sync()
        let parked = object(try engine.explain(collection: "orderDetails", key: .client(id: lc)))
        XCTAssertEqual(parked["state"] as? String, "parked")
        let synced = object(try engine.explain(collection: "people", key: .client(id: pc)))
        XCTAssertEqual(synced["state"] as? String, "synced")
        let never = object(try engine.explain(collection: "orders", key: .server(id: 424242)))
        XCTAssertEqual(never["state"] as? String, "never_seen")
    }
}
