// Example: a shop's sale from Swift, in the real Mahak dialect (the
// default). Syncs with the server given as argument (pulling products, their
// details, people...), writes a sale (an order of type 201 for the
// session's visitor, with one line on a product detail) as one group, and
// syncs it. Build inside the Swift package laid out by
// bindings/scripts/test-swift.sh. Call the engine off the main thread.

import Foundation
import RowSync

/// An integer field of a record's JSON (records cross as JSON text).
func int(_ json: String?, _ key: String) -> Int64? {
    guard let data = json?.data(using: .utf8),
          let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return nil }
    if let i = obj[key] as? Int { return Int64(i) }
    if let d = obj[key] as? Double { return Int64(d) }
    return nil
}

let url = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "http://127.0.0.1:8080/API/v3"
do {
    let engine = try RowsyncEngine.open(path: "example.db", settings: defaultSettings(baseUrl: url))
    try engine.setCredentials(credentials: LoginCredentials(
        username: "user1", password: "pass1", databaseId: 1001, packageNumber: 2002))
    _ = try engine.sync()
    let visitor = try engine.session()?.visitorId ?? 0
    print("this device is visitor \(visitor) on the server")
    let detail = try engine.list(collection: "productDetails", query: ListQuery(limit: 1)).records.first
    // The line names its order by the group (operation 0).
    let sale = try engine.writeGroup(ops: [
        .create(collection: "orders",
                recordJson: #"{"orderType": 201, "visitorId": \#(visitor), "description": "Swift sale"}"#,
                parentOp: nil),
        .create(collection: "orderDetails",
                recordJson: #"{"productDetailId": \#(int(detail, "productDetailId") ?? 0), "count1": 2, "price": \#(int(detail, "price1") ?? 0)}"#,
                parentOp: 0),
    ])
    print("sale \(sale)")
    let report = try engine.sync()
    print("pushed \(report.pushed), pulled \(report.pulled), pending \(report.pending)")
    for m in report.idMappings {
        print("\(m.collection) \(m.clientId) is \(m.serverId) on the server")
    }
} catch RowsyncError.Offline(let detail, _) {
    print("offline, the sale stays queued: \(detail)")
} catch RowsyncError.ReplicaMismatch(let what, let replica, let server) {
    print("this login is another \(what) (\(server), the replica holds \(replica)): wipe to switch")
} catch {
    print("error: \(error)")
}
