// Listeners from Swift: the status and change listeners fire from the
// engine's threads (a pulled page is applied on `rowsync-apply`), fall
// silent once their handle is cancelled or released, and release what they
// hold; the same as `AsyncStream`s, whose end unsubscribes.

import Foundation
import XCTest

// Testable: the streams' handles are internal.
@testable import RowSync

/// Sets a flag when released: proof that whoever held it let go.
final class ReleaseProbe: Sendable {
    let released: Locked<Bool>
    init(_ released: Locked<Bool>) { self.released = released }
    deinit { released.with { $0 = true } }
}

final class ListenerTests: ServerTestCase {
    func testListenersFireFromTheEnginesThreadsAndFallSilentWhenReleased() async throws {
        let engine = try loggedIn()
        let statuses = Locked<[ConnectionStatus]>([])
        let changeThreads = Locked<[String]>([])
        let changed = Locked<[ChangeBatch]>([])
        var statusHandle: SubscriptionHandle? = engine.subscribeStatus { status in
            statuses.with { $0.append(status) }
        }
        XCTAssertEqual(statuses.get, [.unknown], "the state at once")
        var changeHandle: SubscriptionHandle? = engine.subscribeChanges { batches in
            changeThreads.with { $0.append(currentThreadName()) }
            changed.with { $0.append(contentsOf: batches) }
        }

        _ = try await engine.sync()
        XCTAssertTrue(statuses.get.contains(.syncing))
        XCTAssertEqual(statuses.get.last, .online)
        let pulled = changed.get.filter { $0.source == .sync }
        XCTAssertTrue(pulled.contains { $0.collection == "products" && !$0.records.isEmpty })
        XCTAssertTrue(
            changeThreads.get.contains("rowsync-apply"),
            "pulled pages reach the listener on the engine's apply thread: \(changeThreads.get)")

        let person = try engine.create(collection: "people", recordJson: #"{"name": "local"}"#)
        let pc = int(person, "personClientId")
        let local = try XCTUnwrap(changed.get.last)
        XCTAssertEqual(local.source, .local)
        XCTAssertEqual(local.collection, "people")
        XCTAssertEqual(local.records.first?.clientId, pc)

        // Cancelled: silent. Released: silent too, and the handle is what
        // kept the listener (and what it captured) alive.
        let released = Locked(false)
        var probed: SubscriptionHandle? = engine.subscribeChanges {
            [probe = ReleaseProbe(released)] _ in _ = probe
        }
        _ = probed
        XCTAssertFalse(released.get)
        changeHandle?.cancel()
        XCTAssertEqual(changeHandle?.isActive(), false)
        let before = changed.get.count
        changeHandle = nil
        statusHandle = nil
        _ = statusHandle
        probed = nil
        let statusesBefore = statuses.get.count
        _ = try engine.create(collection: "people", recordJson: #"{"name": "unheard"}"#)
        _ = try await engine.sync()
        XCTAssertEqual(changed.get.count, before, "no call after cancel")
        XCTAssertEqual(statuses.get.count, statusesBefore, "no call after release")
        XCTAssertTrue(released.get, "releasing the handle released the listener")
    }

    /// The server's clock: on time, the skew is about 0 and nothing warns;
    /// 20 minutes ahead (the admin interface moves its `ServerTime`), the
    /// summary and the status warn and the listener is told `clockSkewed`
    /// once, while the state stays `online`. Nothing is refused. Real time
    /// drifts: skews are checked within a tolerance.
    func testAClockSkewPastTheThresholdWarnsWhileTheStateStaysOnline() async throws {
        let engine = try loggedIn()
        let statuses = Locked<[ConnectionStatus]>([])
        let handle = engine.subscribeStatus { status in statuses.with { $0.append(status) } }
        let onTime = try await engine.sync()
        XCTAssertLessThanOrEqual(abs(try XCTUnwrap(onTime.clockSkewSeconds)), 5)
        XCTAssertFalse(onTime.clockSkewWarning)
        XCTAssertEqual(try engine.settings().clockSkewWarningSeconds, 780)
        XCTAssertFalse(statuses.get.contains { if case .clockSkewed = $0 { true } else { false } })

        _ = try await admin("POST", "clock", #"{"offsetSeconds": 1200}"#)
        let skewed: SyncSummary
        do {
            try engine.disconnect()
            try engine.setCredentials(credentials: credentials())
            skewed = try await engine.sync()
            _ = try await admin("POST", "clock", #"{"offsetSeconds": 0}"#)
        } catch {
            _ = try? await admin("POST", "clock", #"{"offsetSeconds": 0}"#)
            throw error
        }
        let skew = try XCTUnwrap(skewed.clockSkewSeconds)
        XCTAssertLessThanOrEqual(abs(skew + 1200), 5, "the device is 20 minutes behind")
        XCTAssertTrue(skewed.clockSkewWarning)
        let notices = statuses.get.compactMap { status -> Int64? in
            if case .clockSkewed(let seconds) = status { seconds } else { nil }
        }
        XCTAssertEqual(notices.count, 1, "\(statuses.get)")
        XCTAssertLessThanOrEqual(abs((notices.first ?? 0) + 1200), 5)
        XCTAssertEqual(statuses.get.last, .online)
        let status = try engine.status()
        XCTAssertEqual(status.connection, .online)
        XCTAssertTrue(status.clockSkewWarning)
        handle.cancel()
    }

    func testStreamsYieldFromTheEngineAndUnsubscribeWhenTheyEnd() async throws {
        let engine = try loggedIn()
        // Subscribed here, consumed by tasks.
        let statusStream = engine.statusUpdates()
        let changeStream = engine.changes()
        let statusTask = Task { () -> [ConnectionStatus] in
            var seen: [ConnectionStatus] = []
            for await status in statusStream {
                seen.append(status)
                if seen.count > 1 && status == .online { break }
            }
            return seen
        }
        let changeTask = Task { () -> [ChangeBatch] in
            var seen: [ChangeBatch] = []
            for await batches in changeStream {
                seen.append(contentsOf: batches)
                if seen.contains(where: { $0.source == .local }) { break }
            }
            return seen
        }
        _ = try await engine.sync()
        _ = try engine.create(collection: "people", recordJson: #"{"name": "streamed"}"#)
        let statuses = await statusTask.value
        XCTAssertEqual(statuses.first, .unknown)
        XCTAssertTrue(statuses.contains(.syncing))
        XCTAssertEqual(statuses.last, .online)
        let changes = await changeTask.value
        XCTAssertTrue(changes.contains { $0.source == .sync && $0.collection == "products" })
        XCTAssertEqual(changes.last?.collection, "people")

        // A stream whose consumer is cancelled ends, and unsubscribes.
        let started = Locked(false)
        let cancelled = Task { () -> Int in
            var n = 0
            for await _ in engine.statusUpdates() {
                n += 1
                started.with { $0 = true }
            }
            return n
        }
        let began = await waitUntil { started.get }
        XCTAssertTrue(began)
        cancelled.cancel()
        let n = await cancelled.value
        XCTAssertEqual(n, 1, "the state at once, then the end")
    }

    func testAStreamsEndCancelsItsSubscription() async throws {
        let engine = try await RowsyncEngine.open(path: path("streams.db"), settings: nil)

        // Released without ever being iterated.
        let unusedHandle: SubscriptionHandle
        do {
            let (stream, handle) = engine.subscribedChanges(bufferSize: 8)
            withExtendedLifetime(stream) { XCTAssertTrue(handle.isActive()) }
            unusedHandle = handle
        }
        XCTAssertFalse(unusedHandle.isActive(), "a released stream unsubscribes")

        // A `break` out of a stream nobody else holds.
        let afterBreak = await Task { () -> SubscriptionHandle in
            let (stream, handle) = engine.subscribedStatusUpdates(bufferSize: 8)
            for await _ in stream { break }
            return handle
        }.value
        XCTAssertFalse(afterBreak.isActive(), "a stream left by a break unsubscribes")

        // The consuming task cancelled, while the stream is still held here.
        let (stream, handle) = engine.subscribedChanges(bufferSize: 8)
        let seen = Locked(0)
        let consumer = Task {
            for await _ in stream { seen.with { $0 += 1 } }
        }
        _ = try engine.create(collection: "people", recordJson: #"{"name": "first"}"#)
        let first = await waitUntil { seen.get == 1 }
        XCTAssertTrue(first)
        XCTAssertTrue(handle.isActive())
        consumer.cancel()
        await consumer.value
        XCTAssertFalse(handle.isActive(), "a cancelled consumer unsubscribes")
        _ = try engine.create(collection: "people", recordJson: #"{"name": "unheard"}"#)
        XCTAssertEqual(seen.get, 1)
    }
}
