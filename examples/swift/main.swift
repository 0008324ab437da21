// Example: open a replica, write a record offline, sync it to the server
// given as argument. Build inside the Swift package laid out by
// bindings/scripts/test-swift.sh. Call the engine off the main thread.

import RowSync

let url = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "http://127.0.0.1:8080/API/v3"
do {
    let engine = try RowsyncEngine.open(path: "example.db", settings: defaultSettings(baseUrl: url))
    try engine.setCredentials(credentials: LoginCredentials(
        username: "user1", password: "pass1", databaseId: 1001, packageNumber: 2002))
    let product = try engine.create(collection: "products",
                                    recordJson: #"{"name": "Swift example", "price": 1000}"#)
    print("created \(product)")
    let report = try engine.sync()
    print("pushed \(report.pushed), pulled \(report.pulled), pending \(report.pending)")
} catch RowsyncError.Offline(let detail, _) {
    print("offline, the change stays queued: \(detail)")
} catch {
    print("error: \(error)")
}
