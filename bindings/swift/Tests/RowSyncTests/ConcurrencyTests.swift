// One engine shared by Swift tasks, writing and syncing at once: nothing
// lost, nothing booked twice. And a loop of open/close and subscribe/release
// cycles whose memory stays flat.

import Foundation
import RowSync
import XCTest

final class ConcurrencyTests: ServerTestCase {
    func testFourTasksWriteAndSyncOneEngineAndNothingIsLost() async throws {
        let engine = try loggedIn()
        let (visitor, detailId) = try await start(engine)
        let tag = UUID().uuidString
        let perTask = 6

        let written = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var mine: [Int64] = []
                    for i in 0..<perTask {
                        let out = try engine.writeGroup(ops: [
                            .create(
                                collection: "orders",
                                recordJson:
                                    #"{"orderType": 203, "visitorId": \#(visitor), "description": "\#(tag) \#(worker)-\#(i)"}"#,
                                parentOp: nil),
                            .create(
                                collection: "orderDetails",
                                recordJson:
                                    #"{"productDetailId": \#(detailId), "count1": \#(i + 1), "price": 100}"#,
                                parentOp: 0),
                        ])
                        mine.append(try XCTUnwrap(int(out[0], "orderClientId")))
                        _ = try engine.status()
                        if i % 2 == worker % 2 {
                            _ = try await engine.sync()
                        }
                    }
                    return mine
                }
            }
            var all: [Int64] = []
            for try await ids in group { all.append(contentsOf: ids) }
            return all
        }
        XCTAssertEqual(written.count, 4 * perTask)
        XCTAssertEqual(Set(written).count, written.count, "every order its own client id")
        _ = try await engine.sync()

        let counts = try engine.status().counts
        XCTAssertEqual(
            [counts.pending, counts.inDoubt, counts.parked, counts.deadLetters], [0, 0, 0, 0])
        for oc in written {
            let order = try engine.get(collection: "orders", key: .client(id: oc))
            XCTAssertNotNil(int(order, "orderId"), "order \(oc) has its server id")
        }
        let onServer = try await serverRecords("orders").filter {
            ($0["description"] as? String)?.hasPrefix(tag) == true
        }
        XCTAssertEqual(onServer.count, written.count, "every order once on the server")
        XCTAssertEqual(
            Set(onServer.compactMap { int($0["orderClientId"]) }), Set(written))
        let orderIds = Set(onServer.compactMap { int($0["orderId"]) })
        let lines = try await serverRecords("orderDetails").filter {
            orderIds.contains(int($0["orderId"]) ?? -1)
        }
        XCTAssertEqual(lines.count, written.count, "every line once on the server")
    }

    /// Resident memory in bytes (Linux), or nil elsewhere.
    private func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testOpenCloseAndSubscribeReleaseCyclesKeepMemoryFlat() async throws {
        let file = path("cycles.db")
        let cycles = Int(ProcessInfo.processInfo.environment["ROWSYNC_MEMORY_CYCLES"] ?? "") ?? 400
        let warmup = cycles / 5
        // Generous: a leaked engine (its SQLite cache and statements) or a
        // leaked listener per cycle would pass it long before the end.
        let boundMB =
            Int(ProcessInfo.processInfo.environment["ROWSYNC_MEMORY_BOUND_MB"] ?? "") ?? 24
        let calls = Locked(0)
        var baseline = 0
        for cycle in 0..<cycles {
            if cycle == warmup { baseline = residentBytes() ?? 0 }
            let engine = try await RowsyncEngine.open(path: file, settings: nil)
            // Ballast the listener holds (256 KiB, written so it is resident):
            // a listener kept after its engine and handle are gone shows.
            let ballast = [UInt8](repeating: 1, count: 256 * 1024)
            let changes = engine.subscribeChanges { _ in
                _ = ballast.count
                calls.with { $0 += 1 }
            }
            let status = engine.subscribeStatus { _ in calls.with { $0 += 1 } }
            let stream = engine.changes()
            _ = try engine.create(collection: "people", recordJson: #"{"name": "n\#(cycle)"}"#)
            var iterator = stream.makeAsyncIterator()
            let first = await iterator.next()
            XCTAssertEqual(first?.first?.collection, "people")
            status.cancel()
            _ = changes
        }
        let end = residentBytes() ?? 0
        let growthMB = Double(end - baseline) / 1_048_576
        print(
            "memory: \(cycles) cycles, RSS \(baseline / 1024) KiB after \(warmup), \(end / 1024) KiB at the end (\(String(format: "%+.1f", growthMB)) MiB)"
        )
        XCTAssertEqual(calls.get, cycles * 2, "each cycle: the state at once, one change")
        XCTAssertLessThan(growthMB, Double(boundMB), "memory grows with the cycles")
        let engine = try await RowsyncEngine.open(path: file, settings: nil)
        XCTAssertEqual(
            try engine.count(collection: "people", includeDeleted: false), UInt64(cycles))
    }
}
