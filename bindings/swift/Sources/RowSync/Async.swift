// The async faces of the engine's blocking calls. Every method of the
// generated `RowsyncEngine` is synchronous and may block on disk or network
// (a sync can take seconds, with backoff waits); these overloads run it on a
// GCD queue of their own and resume the caller when it is done, so the
// caller's thread (the main actor, or a thread of Swift's cooperative pool,
// which must never block for long) stays free.

import Dispatch
import Foundation

/// The queue the async calls block on: concurrent, since the engine is
/// thread-safe (reads go on while a sync runs); GCD caps its threads.
private let blockingQueue = DispatchQueue(
    label: "com.mahak.rowsync.blocking", qos: .utility, attributes: .concurrent)

/// Runs `work` on the blocking queue and hands back its result or error.
/// The calling task is suspended, not blocked. Cancelling it does not stop
/// `work`: interrupt a sync with `RowsyncEngine.shutdown()`.
func offCallerThread<T: Sendable>(
    _ work: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        blockingQueue.async {
            // The value is moved into the continuation, not copied: the
            // worker keeps no reference after the resume, so an engine the
            // caller releases is closed then, not whenever this thread
            // gets to drop its copy.
            let value: T
            do {
                value = try work()
            } catch {
                continuation.resume(throwing: error)
                return
            }
            continuation.resume(returning: consume value)
        }
    }
}

extension RowsyncEngine {
    /// Opens (or creates) the replica at `path` off the caller's thread
    /// (opening runs the schema's migrations). See the blocking `open`.
    public static func open(path: String, settings: EngineSettings?) async throws
        -> RowsyncEngine
    {
        try await offCallerThread { try RowsyncEngine.open(path: path, settings: settings) }
    }

    /// Opens (or creates) an encrypted replica off the caller's thread (a
    /// passphrase's key derivation takes a noticeable moment). A missing or
    /// wrong key throws `RowsyncError.WrongKey`.
    public static func openEncrypted(
        path: String, key: DatabaseKey, settings: EngineSettings?
    ) async throws -> RowsyncEngine {
        try await offCallerThread {
            try RowsyncEngine.openEncrypted(path: path, key: key, settings: settings)
        }
    }

    /// Runs one sync cycle (pull, then push, then the queued uploads and
    /// disputes) off the caller's thread. Throws `RowsyncError` as the
    /// blocking `sync()` does; the changes stay queued on `.Offline`.
    public func sync() async throws -> SyncSummary {
        try await offCallerThread { try self.sync() }
    }

    /// Runs one sync that pulls every collection now, whatever its
    /// schedule, off the caller's thread.
    public func syncAll() async throws -> SyncSummary {
        try await offCallerThread { try self.syncAll() }
    }

    /// Syncs now the chosen `collections` with their link collections off
    /// the caller's thread (a stock check before a sale): pulls them,
    /// whatever their schedule, and pushes nothing. Waits for a running
    /// sync to end. An unknown collection throws `RowsyncError.InvalidInput`
    /// before anything is done.
    public func syncCollections(collections: [String]) async throws -> SyncSummary {
        try await offCallerThread { try self.syncCollections(collections: collections) }
    }

    /// Queues the file at `path` for upload off the caller's thread (its
    /// bytes are copied into the replica now). Returns the upload's id.
    public func queueUploadFile(
        collection: String, key: RecordKey, path: String, fileName: String
    ) async throws -> Int64 {
        try await offCallerThread {
            try self.queueUploadFile(
                collection: collection, key: key, path: path, fileName: fileName)
        }
    }
}
