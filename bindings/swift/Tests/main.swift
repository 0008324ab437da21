// Swift binding test: an offline write, a listener firing, a typed error on
// bad input, and a sync against the reference server (URL as argument). Run
// by bindings/scripts/test-swift.sh when a Swift toolchain is installed.

import Foundation
import RowSync

var failures = 0
func check(_ cond: Bool, _ what: String) {
    if !cond {
        FileHandle.standardError.write("FAIL: \(what)\n".data(using: .utf8)!)
        failures += 1
    }
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
    check(created.contains("personClientId"), "created record has a client id")
    check(created.contains(#""name""#), "stored in camelCase")
    check(counter.batches >= 1, "change listener fired")
    do {
        _ = try engine.create(collection: "noSuchCollection", recordJson: "{}")
        check(false, "unknown collection must throw")
    } catch RowsyncError.InvalidInput(let collection, _, _) {
        check(collection == "noSuchCollection", "InvalidInput names the collection")
    }
    var settings = defaultSettings(baseUrl: url)
    settings.maxAttempts = 2
    try engine.configure(settings: settings)
    try engine.setCredentials(credentials: LoginCredentials(
        username: "user1", password: "pass1", databaseId: 1001, packageNumber: 2002))
    let report = try engine.sync()
    check(report.pushed >= 1, "record pushed")
    let session = try engine.session()
    check((session?.visitorId ?? 0) > 0, "the login's session names the visitor")
    sub.cancel()
} catch {
    check(false, "unexpected error: \(error)")
}
if failures > 0 { exit(1) }
print("Swift test: all checks passed")
