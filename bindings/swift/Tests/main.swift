// Swift binding test, in the real Mahak dialect and vocabulary: an offline
// write, a listener firing, typed errors (invalid input, a refused dialect
// switch), a sync against the reference server (URL as argument), the
// session, the pulled product details and people, and a sale (an order of
// type 201 for the session's visitor and a pulled customer, with a line on a
// pulled product detail) written as one group and pushed with its ids mapped
// back. Run by bindings/scripts/test-swift.sh when a Swift toolchain is
// installed.

import Foundation
import RowSync

var failures = 0
func check(_ cond: Bool, _ what: String) {
    if !cond {
        FileHandle.standardError.write("FAIL: \(what)\n".data(using: .utf8)!)
        failures += 1
    }
}

/// A record's JSON as a dictionary (empty if it does not parse).
func object(_ json: String?) -> [String: Any] {
    guard let data = json?.data(using: .utf8),
          let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return [:] }
    return obj
}

/// An integer field of a record's JSON, or nil.
func int(_ json: String?, _ key: String) -> Int64? {
    let v = object(json)[key]
    if let i = v as? Int { return Int64(i) }
    if let i = v as? Int64 { return i }
    if let d = v as? Double { return Int64(d) }
    return nil
}

final class Counter: ChangeListener, @unchecked Sendable {
    var batches = 0
    func onChange(changes: [ChangeBatch]) { batches += changes.count }
}

let url = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ""
do {
    let engine = try RowsyncEngine.open(path: ":memory:", settings: nil)
    let counter = Counter()
    let sub = engine.subscribeChanges(listener: counter)
    let created = try engine.create(collection: "people",
                                    recordJson: #"{"personCode": 9001, "Name": "Swift customer"}"#)
    check(int(created, "personClientId") != nil, "created record has a client id")
    check(object(created)["name"] as? String == "Swift customer", "stored in camelCase")
    check(counter.batches >= 1, "change listener fired")
    do {
        _ = try engine.create(collection: "noSuchCollection", recordJson: "{}")
        check(false, "unknown collection must throw")
    } catch RowsyncError.InvalidInput(let collection, _, _) {
        check(collection == "noSuchCollection", "InvalidInput names the collection")
    }

    check(defaultSettings(baseUrl: url) == EngineSettings(baseUrl: url, dialect: .mahak),
          "defaultSettings is EngineSettings' defaults in the mahak dialect")
    var settings = defaultSettings(baseUrl: url)
    settings.maxAttempts = 2
    try engine.configure(settings: settings)
    let before = try engine.session()
    check(before == nil, "no session before the first login")
    try engine.setCredentials(credentials: LoginCredentials(
        username: "user1", password: "pass1", databaseId: 1001, packageNumber: 2002))
    let report = try engine.sync()
    check(report.pushed == 1, "the customer pushed")
    check(report.idMappings.contains { $0.collection == "people" }, "the customer's id mapped")

    // The login's session: the visitor orders carry.
    let session = try engine.session()
    let visitor = session?.visitorId ?? 0
    let picture = try engine.absoluteUrl(url: "/Files/p 1.jpg")
    check(picture.hasPrefix("http://127.0.0.1:") && !picture.contains("/API/") && picture.hasSuffix("/Files/p%201.jpg"), "a relative picture URL made absolute")
    check(visitor > 0, "the login's session names the visitor")
    let status = try engine.status()
    check(status.dialect == .mahak, "the real dialect by default")
    check(status.session == session, "status carries the session")
    check(status.counts.inDoubt == 0, "no create in doubt")

    // The real vocabulary, pulled.
    let detail = try engine.list(collection: "productDetails", query: ListQuery(limit: 1)).records.first
    let detailId = int(detail, "productDetailId") ?? 0
    let price = int(detail, "price1") ?? 0
    check(detailId > 0, "a product detail pulled")
    let customer = try engine.list(collection: "people", query: ListQuery(limit: 100)).records
        .first { (int($0, "personId") ?? 0) > 0 && !$0.contains("Swift customer") }
    let customerId = int(customer, "personId") ?? 0
    check(customerId > 0, "a customer pulled")

    // A sale: the order and its line as one group, the line linked to the
    // order by the group.
    let sale = try engine.writeGroup(ops: [
        .create(collection: "orders",
                recordJson: #"{"orderType": 201, "visitorId": \#(visitor), "personId": \#(customerId)}"#,
                parentOp: nil),
        .create(collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(detailId), "count1": 2, "price": \#(price)}"#,
                parentOp: 0),
    ])
    let orderCid = int(sale[0], "orderClientId") ?? 0
    check(orderCid != 0 && int(sale[1], "orderClientId") == orderCid, "the group linked the line to its order")
    let pushed = try engine.sync()
    check(pushed.pushed == 2, "the order and its line pushed")
    let orderMap = pushed.idMappings.first { $0.collection == "orders" && $0.clientId == orderCid }
    check(orderMap != nil, "the order's id mapped")
    check(pushed.idMappings.contains { $0.collection == "orderDetails" }, "the line's id mapped")
    if let m = orderMap {
        let order = try engine.get(collection: "orders", key: .server(id: m.serverId))
        check(int(order, "orderClientId") == orderCid, "the order readable by its server id")
        check(int(order, "visitorId") == visitor, "the order carries the visitor")
    }

    // The replica holds mahak data: another dialect is refused.
    do {
        var documented = settings
        documented.dialect = .documented
        try engine.configure(settings: documented)
        check(false, "a dialect switch on a filled replica must throw")
    } catch RowsyncError.Config(let detail) {
        check(detail.contains("dialect"), "Config names the dialect")
    }
    sub.cancel()
} catch {
    check(false, "unexpected error: \(error)")
}
if failures > 0 { exit(1) }
print("Swift test: all checks passed")
