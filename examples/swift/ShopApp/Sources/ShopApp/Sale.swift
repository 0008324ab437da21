import RowSync

/// Opens the shop's replica and logs in; the first sync pulls products,
/// productDetails, people... (`await`: the engine works off this thread).
func openShop(dbPath: String, baseUrl: String, password: String) async throws -> RowsyncEngine {
    let engine = try await RowsyncEngine.open(
        path: dbPath, settings: defaultSettings(baseUrl: baseUrl))
    try engine.setCredentials(
        credentials: LoginCredentials(
            username: "user1", password: password, databaseId: 1001, packageNumber: 2002))
    _ = try await engine.sync()
    return engine
}

/// A sale (an order of type 201 for the visitor the server named at login)
/// and its line, one group: stored and pushed together, or neither.
func sell(productDetailId: Int64, price: Int64, on engine: RowsyncEngine) async throws
    -> SyncSummary?
{
    let visitor = try engine.session()?.visitorId ?? 0
    _ = try engine.writeGroup(ops: [
        .create(
            collection: "orders", recordJson: #"{"orderType": 201, "visitorId": \#(visitor)}"#,
            parentOp: nil),
        .create(
            collection: "orderDetails",
            recordJson:
                #"{"productDetailId": \#(productDetailId), "count1": 2, "price": \#(price)}"#,
            parentOp: 0),  // the line's parent: operation 0
    ])
    do {
        return try await engine.sync()  // pull, then push; the ids come back in the summary
    } catch RowsyncError.Offline {
        return nil  // the sale stays queued for the next sync
    }
}
