// Example: a shop's sale from Swift, in the real Mahak dialect (the
// default), against the server given as argument. Opens and logs in
// (Sale.swift's `openShop`), picks a pulled product detail, sells two of it
// (`sell`, the README's snippet), and prints what the sync sent and mapped.
// Build with `swift build` in examples/swift/ShopApp (bindings/swift/README.md
// says how the linker finds the Rust library); bindings/scripts/test-swift.sh
// runs it against the reference server.

import Foundation
import RowSync

/// An integer field of a record's JSON (records cross as JSON text).
func int(_ json: String?, _ key: String) -> Int64? {
    guard let data = json?.data(using: .utf8),
        let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return nil }
    return (obj[key] as? NSNumber)?.int64Value
}

let url =
    CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "http://127.0.0.1:8080/API/v3"
do {
    let engine = try await openShop(dbPath: "example.db", baseUrl: url, password: "pass1")
    print("this device is visitor \(try engine.session()?.visitorId ?? 0) on the server")
    let detail = try engine.list(collection: "productDetails", query: ListQuery(limit: 1)).records
        .first
    guard let detailId = int(detail, "productDetailId") else {
        print("no product detail pulled")
        exit(1)
    }
    if let report = try await sell(
        productDetailId: detailId, price: int(detail, "price1") ?? 0, on: engine)
    {
        print("pushed \(report.pushed), pulled \(report.pulled), pending \(report.pending)")
        for m in report.idMappings {
            print("\(m.collection) \(m.clientId) is \(m.serverId) on the server")
        }
    } else {
        print("offline: the sale stays queued")
    }
} catch RowsyncError.ReplicaMismatch(let what, let replica, let server) {
    print("this login is another \(what) (\(server), the replica holds \(replica)): wipe to switch")
    exit(1)
} catch {
    print("error: \(error)")
    exit(1)
}
