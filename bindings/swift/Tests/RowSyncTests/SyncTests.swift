// A day of a shop against the reference server, in the real Mahak dialect
// and vocabulary: open, configure, log in (the engine sends the password's
// MD5), sync, read `products`, `productDetails` and `people`, the session's
// visitor; a sale (orderType 201) with lines on a pulled product detail,
// written as one group, pushed, the server's ids mapped back onto the
// lines; a field-sales visitor order (203); the log sink; and what the app
// must decide: a refused dialect switch, a replica of another visitor, a
// refused login.

import Foundation
import RowSync
import XCTest

final class SyncTests: ServerTestCase {
    func testLoginSyncAndReadTheShop() async throws {
        let engine = try await RowsyncEngine.open(path: path("shop.db"), settings: nil)
        XCTAssertEqual(
            defaultSettings(baseUrl: serverURL),
            EngineSettings(baseUrl: serverURL, dialect: .mahak),
            "defaultSettings is EngineSettings' defaults in the mahak dialect")
        try engine.configure(settings: try settings())
        XCTAssertEqual(try engine.settings().dialect, .mahak)
        XCTAssertNil(try engine.session(), "no session before the first login")
        try engine.setCredentials(credentials: credentials())
        let sink = LineSink()
        engine.setLogSink(sink: sink, level: .debug)

        let report = try await engine.sync()
        XCTAssertGreaterThan(report.pullRequests, 0)
        XCTAssertTrue(
            report.collections.contains { $0.collection == "productDetails" && $0.pulled > 0 })
        XCTAssertTrue(
            sink.lines.get.contains { $0.contains("GetAllData") }, "the sink saw the pull")
        XCTAssertFalse(sink.lines.get.contains { $0.contains("pass1") }, "no password in the logs")
        XCTAssertTrue(try engine.syncLog(limit: 50).contains { $0.endpoint == "GetAllData" })
        engine.clearLogSink()

        let session = try XCTUnwrap(try engine.session())
        XCTAssertGreaterThan(session.visitorId, 0)
        XCTAssertEqual(session.databaseId, 1001)
        let status = try engine.status()
        XCTAssertEqual(status.dialect, .mahak)
        XCTAssertEqual(status.session, session)
        XCTAssertEqual(status.connection, .online)
        XCTAssertEqual(status.counts.pending, 0)

        // The seeded shop (5 products, 3 people), in camelCase.
        let products = try engine.list(collection: "products", query: ListQuery(limit: 100)).records
        XCTAssertEqual(products.count, 5)
        XCTAssertTrue(products.allSatisfy { (int($0, "productId") ?? 0) > 0 })
        let details = try engine.list(collection: "productDetails", query: ListQuery(limit: 100))
            .records
        XCTAssertEqual(details.count, 5)
        XCTAssertTrue(
            details.allSatisfy { int($0, "price1") != nil && int($0, "productId") != nil })
        let people = try engine.list(collection: "people", query: ListQuery(limit: 100)).records
        XCTAssertGreaterThanOrEqual(people.count, 3)
        XCTAssertTrue(people.contains { !(string($0, "name") ?? "").isEmpty })
        XCTAssertEqual(try engine.count(collection: "products", includeDeleted: false), 5)

        let picture = try engine.absoluteUrl(url: "/Files/p 1.jpg")
        XCTAssertTrue(picture.hasPrefix("http://127.0.0.1:"), picture)
        XCTAssertTrue(picture.hasSuffix("/Files/p%201.jpg") && !picture.contains("/API/"), picture)
    }

    func testASaleIsPushedAsOneGroupAndItsIdsMappedBack() async throws {
        let engine = try loggedIn()
        _ = try await engine.sync()
        let visitor = try XCTUnwrap(try engine.session()).visitorId
        let detail = try engine.list(collection: "productDetails", query: ListQuery(limit: 1))
            .records.first
        let detailId = try XCTUnwrap(int(detail, "productDetailId"))
        let price = try XCTUnwrap(int(detail, "price1"))
        let customer = try engine.list(collection: "people", query: ListQuery(limit: 100)).records
            .first { (int($0, "personId") ?? 0) > 0 }
        let customerId = try XCTUnwrap(int(customer, "personId"))

        // The order and two lines, the lines linked to it by the group; one
        // line written in PascalCase.
        let sale = try engine.writeGroup(ops: [
            .create(
                collection: "orders",
                recordJson:
                    #"{"orderType": 201, "visitorId": \#(visitor), "personId": \#(customerId), "description": "Swift sale"}"#,
                parentOp: nil),
            .create(
                collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(detailId), "count1": 2, "price": \#(price)}"#,
                parentOp: 0),
            .create(
                collection: "orderDetails",
                recordJson:
                    #"{"ProductDetailId": \#(detailId), "Count1": 1.5, "Price": \#(price)}"#,
                parentOp: 0),
        ])
        XCTAssertEqual(sale.count, 3)
        let orderCid = try XCTUnwrap(int(sale[0], "orderClientId"))
        let lineCids = try sale.dropFirst().map { try XCTUnwrap(int($0, "orderDetailClientId")) }
        XCTAssertTrue(sale.dropFirst().allSatisfy { int($0, "orderClientId") == orderCid })
        XCTAssertEqual(object(sale[2])["count1"] as? Double, 1.5, "PascalCase stored in camelCase")
        XCTAssertEqual(
            try engine.explain(collection: "orders", key: .client(id: orderCid)).contains(
                #""state":"pending""#), true)

        let pushed = try await engine.sync()
        XCTAssertEqual(pushed.pushed, 3)
        XCTAssertEqual(pushed.deadLetters, 0)
        let orderMap = try XCTUnwrap(
            pushed.idMappings.first { $0.collection == "orders" && $0.clientId == orderCid })
        for cid in lineCids {
            XCTAssertTrue(
                pushed.idMappings.contains {
                    $0.collection == "orderDetails" && $0.clientId == cid
                },
                "line \(cid) mapped")
        }
        let order = try engine.get(collection: "orders", key: .server(id: orderMap.serverId))
        XCTAssertEqual(int(order, "orderClientId"), orderCid)
        XCTAssertEqual(int(order, "visitorId"), visitor)
        let line = try engine.get(collection: "orderDetails", key: .client(id: lineCids[0]))
        XCTAssertEqual(
            int(line, "orderId"), orderMap.serverId, "the line names its order's server id")
        XCTAssertEqual(try engine.status().counts.pending, 0)

        // On the server: the order once, of type 201, with its two lines.
        let onServer = try await serverRecords("orders").filter {
            int($0["orderClientId"]) == orderCid
        }
        XCTAssertEqual(onServer.count, 1)
        XCTAssertEqual(int(onServer.first?["orderType"]), 201)
        XCTAssertEqual(int(onServer.first?["orderId"]), orderMap.serverId)
        let lines = try await serverRecords("orderDetails").filter {
            int($0["orderId"]) == orderMap.serverId
        }
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines.allSatisfy { int($0["productDetailId"]) == detailId })
    }

    func testAFieldSalesVisitorOrderIsType203() async throws {
        let engine = try loggedIn()
        let (visitor, detailId) = try await start(engine)
        let out = try engine.writeGroup(ops: [
            .create(
                collection: "orders", recordJson: #"{"orderType": 203, "visitorId": \#(visitor)}"#,
                parentOp: nil),
            .create(
                collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(detailId), "count1": 1, "price": 1000}"#,
                parentOp: 0),
        ])
        let oc = try XCTUnwrap(int(out[0], "orderClientId"))
        let report = try await engine.sync()
        XCTAssertEqual(report.pushed, 2)
        let order = try await serverRecords("orders").first { int($0["orderClientId"]) == oc }
        XCTAssertEqual(int(order?["orderType"]), 203)
        XCTAssertEqual(int(order?["visitorId"]), visitor)
    }

    func testTheAppDecidesOnADialectSwitchAnotherVisitorAndARefusedLogin() async throws {
        let engine = try loggedIn()
        _ = try engine.create(collection: "people", recordJson: #"{"name": "kept"}"#)
        _ = try await engine.sync()
        let visitor = try XCTUnwrap(try engine.session()).visitorId

        var documented = try engine.settings()
        documented.dialect = .documented
        do {
            try engine.configure(settings: documented)
            XCTFail("a dialect switch on a filled replica must throw")
        } catch RowsyncError.Config(let detail) {
            XCTAssertTrue(detail.contains("dialect"), detail)
        }

        // The server now says this login is another visitor: nothing changes.
        try await admin("POST", "session", #"{"visitorId": \#(visitor + 68)}"#)
        do {
            try engine.disconnect()
            try engine.setCredentials(credentials: credentials())
            do {
                _ = try await engine.sync()
                XCTFail("another visitor must throw")
            } catch RowsyncError.ReplicaMismatch(let what, let replica, let server) {
                XCTAssertEqual(what, "visitorId")
                XCTAssertEqual(replica, visitor)
                XCTAssertEqual(server, visitor + 68)
            }
            XCTAssertEqual(try engine.count(collection: "people", includeDeleted: false) > 0, true)
        }
        try await admin("POST", "session", #"{"visitorId": \#(visitor)}"#)
        _ = try await engine.sync()

        try engine.setCredentials(credentials: credentials(password: "wrong"))
        do {
            _ = try await engine.sync()
            XCTFail("a wrong password must throw")
        } catch RowsyncError.AuthFailed(_, let detail, _) {
            // The server's own words: "wrong user name or password".
            XCTAssertEqual(detail, "نام کاربری یا رمز عبور اشتباه است")
        }
        XCTAssertEqual(try engine.status().connection, .authFailed)
    }

    func testASharedDeviceSendsOnlyTheSignedInUsersChanges() async throws {
        let engine = try loggedIn()
        _ = try await engine.sync()
        _ = try engine.create(collection: "people", recordJson: #"{"name": "user1's customer"}"#)
        try engine.setCredentials(
            credentials: LoginCredentials(
                username: "user2", password: "pass2", databaseId: 1001, packageNumber: 2002))
        do {
            _ = try await engine.sync()
            XCTFail("user1's change must stop user2's sync")
        } catch RowsyncError.PendingChangesOfAnotherUser(let user, let count) {
            XCTAssertEqual(user, "user1")
            XCTAssertEqual(count, 1)
        }
        XCTAssertEqual(try engine.status().pendingByUser.map(\.user), ["user1"])
        XCTAssertTrue(try engine.exportPending(user: "user1").contains("user1's customer"))
        XCTAssertEqual(try engine.discardPending(user: "user1"), 1)
        _ = try await engine.sync()
    }

    /// Issue 27.2: a sync fills the picture cache beside the replica; a
    /// picture's file is there, whole, and an unknown picture has none.
    func testPicturePathAfterASync() async throws {
        let engine = try loggedIn()
        _ = try await start(engine)
        let picture = try engine.list(collection: "pictures", query: ListQuery(limit: 1))
            .records.first
        let id = try XCTUnwrap(int(picture, "pictureId"))
        let file = try XCTUnwrap(try engine.picturePath(pictureId: id))
        XCTAssertTrue(file.hasPrefix(path("replica.db.pictures")), file)
        let data = try XCTUnwrap(FileManager.default.contents(atPath: file))
        XCTAssertEqual(Array(data.prefix(2)), [0xFF, 0xD8])
        XCTAssertNil(try engine.picturePath(pictureId: 987_654_321))
    }
}

/// A log sink keeping every line.
final class LineSink: LogSink {
    let lines = Locked<[String]>([])
    func log(level: LogLevel, target: String, message: String) {
        lines.with { $0.append("\(level) \(target) \(message)") }
    }
}
