// Example: open a replica, write a record offline, sync it to the server
// given as argument. Build inside the Swift package laid out by
// bindings/scripts/test-swift.sh. Call the engine off the main thread.

import RowSync

let url = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "http://127.0.0.1:8080/API/v3"
do {
    let engine = try RowsyncEngine.open(path: "example.db", settings: defaultSettings(baseUrl: url))
    try engine.setCredentials(credentials: LoginCredentials(
        username: "user1", password: "pass1", databaseId: 1001, packageNumber: 2002))
    let person = try engine.create(collection: "people",
                                   recordJson: #"{"name": "مشتري Swift ", "mobile": "09120000000"}"#)
    print("created \(person)")
    let report = try engine.sync()
    print("pushed \(report.pushed), pulled \(report.pulled), pending \(report.pending)")
    print("this device is visitor \(try engine.session()?.visitorId ?? 0) on the server")
} catch RowsyncError.Offline(let detail, _) {
    print("offline, the change stays queued: \(detail)")
} catch {
    print("error: \(error)")
}
