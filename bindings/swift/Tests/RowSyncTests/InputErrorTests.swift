// Errors as Swift sees them, without a server: `RowsyncError` is a Swift
// enum conforming to `Error`, its cases caught by pattern with their
// fields; bad input from Swift (broken JSON, an unknown collection, a
// record nested too deep, a group that fails half way) is a typed error and
// leaves nothing written.

import Foundation
import RowSync
import XCTest

final class InputErrorTests: ServerTestCase {
    func testBrokenJSONIsInvalidInputOnTheRecordAndWritesNothing() throws {
        let engine = try RowsyncEngine.open(path: path("bad.db"), settings: nil)
        do {
            _ = try engine.create(collection: "products", recordJson: "{not json")
            XCTFail("broken JSON must throw")
        } catch RowsyncError.InvalidInput(let collection, let field, let reason) {
            XCTAssertEqual(collection, "products")
            XCTAssertEqual(field, "record")
            XCTAssertTrue(reason.contains("JSON"), reason)
        }
        XCTAssertEqual(try engine.count(collection: "products", includeDeleted: true), 0)
        XCTAssertEqual(try engine.status().counts.pending, 0)
    }

    func testAnUnknownCollectionIsInvalidInputNamingIt() throws {
        let engine = try RowsyncEngine.open(path: path("bad.db"), settings: nil)
        do {
            _ = try engine.create(collection: "noSuchCollection", recordJson: "{}")
            XCTFail("an unknown collection must throw")
        } catch RowsyncError.InvalidInput(let collection, _, let reason) {
            XCTAssertEqual(collection, "noSuchCollection")
            XCTAssertTrue(reason.contains("unknown collection"), reason)
        }
        XCTAssertThrowsError(try engine.get(collection: "noSuchCollection", key: .client(id: 1)))
        XCTAssertEqual(try engine.status().counts.pending, 0)
    }

    func testARecordNestedTooDeepIsInvalidInputAndWritesNothing() throws {
        let engine = try RowsyncEngine.open(path: path("bad.db"), settings: nil)
        // 70 levels: valid JSON, deeper than the engine takes (64).
        let deep = String(repeating: #"{"a":"#, count: 70) + "1" + String(repeating: "}", count: 70)
        do {
            _ = try engine.create(
                collection: "people", recordJson: #"{"name": "x", "note": \#(deep)}"#)
            XCTFail("a record nested too deep must throw")
        } catch RowsyncError.InvalidInput(let collection, _, let reason) {
            XCTAssertEqual(collection, "people")
            XCTAssertTrue(reason.contains("nested deeper"), reason)
        }
        // Far deeper: refused by the JSON parser itself, still typed.
        let deeper = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        XCTAssertThrowsError(try engine.create(collection: "people", recordJson: deeper)) { error in
            guard case RowsyncError.InvalidInput(_, let field, _) = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
            XCTAssertEqual(field, "record")
        }
        XCTAssertEqual(try engine.count(collection: "people", includeDeleted: true), 0)
        XCTAssertEqual(try engine.status().counts.pending, 0)
    }

    func testAGroupThatFailsHalfWayStoresNothing() throws {
        let engine = try RowsyncEngine.open(path: path("bad.db"), settings: nil)
        do {
            // A line with no order: the group is refused as a whole.
            _ = try engine.writeGroup(ops: [
                .create(collection: "orders", recordJson: #"{"orderType": 201}"#, parentOp: nil),
                .create(
                    collection: "orderDetails", recordJson: #"{"productDetailId": 1, "count1": 2}"#,
                    parentOp: nil),
            ])
            XCTFail("an order line with no order must throw")
        } catch RowsyncError.InvalidInput(let collection, _, _) {
            XCTAssertEqual(collection, "orderDetails")
        }
        do {
            _ = try engine.writeGroup(ops: [
                .create(collection: "orders", recordJson: #"{"orderType": 201}"#, parentOp: nil),
                .create(collection: "orderDetails", recordJson: "[1, 2", parentOp: 0),
            ])
            XCTFail("broken JSON in a group must throw")
        } catch RowsyncError.InvalidInput(_, let field, _) {
            XCTAssertEqual(field, "record")
        }
        XCTAssertEqual(try engine.count(collection: "orders", includeDeleted: true), 0)
        XCTAssertEqual(try engine.count(collection: "orderDetails", includeDeleted: true), 0)
    }

    func testErrorsCarryTheirFieldsAndDescribeThemselves() throws {
        let engine = try RowsyncEngine.open(path: path("plain.db"), settings: nil)
        // No URL configured: a configuration error, thrown by the async face too.
        XCTAssertThrowsError(try engine.sync()) { error in
            guard case RowsyncError.Config = error else {
                return XCTFail("expected Config, got \(error)")
            }
        }
        _ = try engine.create(collection: "products", recordJson: #"{"name": "tea"}"#)
        do {
            try engine.wipe(force: false)
            XCTFail("a wipe with pending changes must throw")
        } catch let error as RowsyncError {
            XCTAssertEqual(error, .PendingChanges(count: 1))
            XCTAssertFalse(error.isTransient)
            XCTAssertTrue(
                error.localizedDescription.contains("PendingChanges"), error.localizedDescription)
        }
        XCTAssertTrue(RowsyncError.Offline(detail: "x", retryAfterMs: nil).isTransient)
        XCTAssertTrue(RowsyncError.RateLimited(retryAfterMs: 5, trackingId: nil).isTransient)
        XCTAssertTrue(
            RowsyncError.Stalled(endpoint: "GetAllData", detail: "x", attempts: 2).isTransient)
        XCTAssertFalse(RowsyncError.WrongKey(detail: "x").isTransient)
    }

    func testAsyncCallsThrowTheSameTypedErrors() async throws {
        let engine = try await RowsyncEngine.open(path: path("plain.db"), settings: nil)
        do {
            _ = try await engine.sync()
            XCTFail("a sync without a URL must throw")
        } catch RowsyncError.Config(let detail) {
            XCTAssertFalse(detail.isEmpty)
        }
        do {
            _ = try await engine.syncAll()
            XCTFail("a sync without a URL must throw")
        } catch RowsyncError.Config {
        }
    }
}
