// The replica file from Swift: encrypted (no record text in its bytes,
// `WrongKey` for a wrong and for a missing key, rekey, closed when
// released), and the task queue: an upload queued from a file, sent after
// its record with its progress on the status stream, and a dispute.

import Foundation
import RowSync
import XCTest

final class ReplicaTests: ServerTestCase {
    /// Every byte of the replica and its side files (WAL, journal).
    private func bytesOnDisk(_ file: String) throws -> Data {
        var all = Data()
        for suffix in ["", "-wal", "-journal", "-shm"] {
            if let d = FileManager.default.contents(atPath: file + suffix) { all.append(d) }
        }
        return all
    }

    func testAnEncryptedReplicaHidesItsTextAndWantsItsKey() async throws {
        let file = path("encrypted.db")
        // A key from the Keychain would be 32 bytes like these.
        let key = Data((0..<32).map { UInt8(($0 * 5 + 3) & 0xff) })
        do {
            let engine = try await RowsyncEngine.openEncrypted(
                path: file, key: .raw(bytes: key), settings: nil)
            _ = try engine.create(
                collection: "people",
                recordJson: #"{"name": "Maryam Ahmadi", "mobile": "09127778899"}"#)
            XCTAssertEqual(try engine.count(collection: "people", includeDeleted: false), 1)
        }
        // Released at the end of the `do`: closed then, its WAL folded in.
        XCTAssertFalse(FileManager.default.fileExists(atPath: file + "-wal"))
        let raw = try bytesOnDisk(file)
        XCTAssertGreaterThan(raw.count, 0)
        XCTAssertNil(raw.range(of: Data("09127778899".utf8)), "no record text in the file")
        XCTAssertNil(raw.range(of: Data("Maryam".utf8)))

        do {
            _ = try await RowsyncEngine.openEncrypted(
                path: file, key: .passphrase(text: "not the key"), settings: nil)
            XCTFail("a wrong key must throw")
        } catch RowsyncError.WrongKey {
        }
        do {
            _ = try await RowsyncEngine.open(path: file, settings: nil)
            XCTFail("a missing key must throw")
        } catch RowsyncError.WrongKey {
        }
        XCTAssertEqual(try bytesOnDisk(file), raw, "a refused open leaves the file as it was")

        // Rekey: the old key no longer opens it, the new one does.
        do {
            let engine = try await RowsyncEngine.openEncrypted(
                path: file, key: .raw(bytes: key), settings: nil)
            try engine.rekey(key: .passphrase(text: "the new passphrase"))
        }
        do {
            _ = try await RowsyncEngine.openEncrypted(
                path: file, key: .raw(bytes: key), settings: nil)
            XCTFail("the old key must no longer open it")
        } catch RowsyncError.WrongKey {
        }
        let reopened = try await RowsyncEngine.openEncrypted(
            path: file, key: .passphrase(text: "the new passphrase"), settings: nil)
        XCTAssertEqual(try reopened.count(collection: "people", includeDeleted: false), 1)
        let person = try reopened.list(collection: "people", query: ListQuery(limit: 1)).records
            .first
        XCTAssertEqual(string(person, "mobile"), "09127778899")
    }

    func testAnUploadIsSentAfterItsRecordWithProgress() async throws {
        let engine = try loggedIn()
        _ = try await engine.sync()
        let picture = try engine.create(
            collection: "pictures", recordJson: #"{"fileName": "signed.jpg"}"#)
        let key = RecordKey.client(id: try XCTUnwrap(int(picture, "pictureClientId")))

        var s = try engine.settings()
        s.maxUploadBytes = 4
        try engine.configure(settings: s)
        do {
            _ = try engine.queueUploadBytes(
                collection: "pictures", key: key, bytes: Data([1, 2, 3, 4, 5]),
                fileName: "signed.jpg")
            XCTFail("a file over the limit must throw")
        } catch RowsyncError.FileTooLarge(let size, let limit) {
            XCTAssertEqual(size, 5)
            XCTAssertEqual(limit, 4)
        }
        s.maxUploadBytes = 1 << 20
        try engine.configure(settings: s)

        // 200 KiB, so the progress is told more than once (every 64 KiB).
        let photo = dir.appendingPathComponent("signed.jpg")
        let bytes = Data((0..<(200 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: photo)
        let uploadId = try await engine.queueUploadFile(
            collection: "pictures", key: key, path: photo.path, fileName: "signed.jpg")
        try FileManager.default.removeItem(at: photo)
        XCTAssertEqual(try engine.tasks().map(\.status), [.waitingForRecord])
        XCTAssertEqual(try engine.status().uploads.map(\.id), [uploadId])

        // A dispute on an order, queued beside the upload.
        let disputes = try engine.solveOrderDispute(items: [OrderDispute(orderId: 501, code: 2)])
        XCTAssertEqual(disputes.count, 1)

        let statuses = engine.statusUpdates()
        let progress = Task { () -> [(done: UInt64, total: UInt64)] in
            var seen: [(done: UInt64, total: UInt64)] = []
            for await status in statuses {
                if case .uploading(let id, _, _, _, let done, let total) = status, id == uploadId {
                    seen.append((done: done, total: total))
                }
                if status == .online && !seen.isEmpty { break }
            }
            return seen
        }
        let report = try await engine.sync()
        XCTAssertEqual(report.uploaded, 1)
        XCTAssertEqual(report.disputesSent, 1)
        XCTAssertTrue(try engine.tasks().isEmpty)
        let seen = await progress.value
        XCTAssertGreaterThan(seen.count, 1, "progress told as the file goes out")
        XCTAssertEqual(seen.last?.done, UInt64(bytes.count))
        XCTAssertTrue(seen.allSatisfy { $0.total == UInt64(bytes.count) })
        let done = seen.map { $0.done }
        XCTAssertEqual(done, done.sorted(), "progress only grows")

        let uploads = try await admin("GET", "uploads") as? [[String: Any]] ?? []
        let stored = uploads.last { $0["fileName"] as? String == "signed.jpg" }
        XCTAssertEqual(int(stored?["size"]), Int64(bytes.count))
        // The answer's FileUrl and FileHash are the picture's url and
        // pictureHash now, the server's: nothing is pending.
        let uploaded = try engine.get(collection: "pictures", key: key)
        XCTAssertTrue(
            uploaded?.contains(#""url":"/api/v3/Content/Images/all/"#) == true, uploaded ?? "")
        XCTAssertTrue(uploaded?.contains(#""pictureHash":""#) == true)
        XCTAssertEqual(try engine.status().counts.pending, 0)
    }
}
