// The engine's listeners as Swift values: `AsyncStream`s of connection
// status, of data changes and of a live query's records, and closures. The generated protocols
// (`ChangeListener`, `StatusListener`) stay usable as they are; these spare
// an app the class it would write for each. In every form the subscription
// lives exactly as long as its `SubscriptionHandle`: releasing the handle
// (deinit) unsubscribes, and so does the end of a stream.

extension RowsyncEngine {
    /// The connection state now, then every change of it (`.syncing`,
    /// `.online`, `.uploading` with its progress, `.offline`...), until the
    /// stream ends: the consuming task is cancelled, or the stream and its
    /// iterator are released (as after a `break` out of
    /// `for await status in engine.statusUpdates()`). Its end unsubscribes.
    ///
    /// States arrive from the engine's threads in order; if the consumer is
    /// slower than the engine, only the newest `bufferSize` are kept.
    public func statusUpdates(bufferSize: Int = 64) -> AsyncStream<ConnectionStatus> {
        subscribedStatusUpdates(bufferSize: bufferSize).stream
    }

    /// The records that changed (after local writes and applied sync
    /// steps), one element per notification, until the stream ends (as for
    /// `statusUpdates`). Its end unsubscribes. If the consumer falls
    /// behind, the oldest elements are
    /// kept and newer ones beyond `bufferSize` dropped: re-read the
    /// collections after a gap rather than rely on every batch.
    public func changes(bufferSize: Int = 256) -> AsyncStream<[ChangeBatch]> {
        subscribedChanges(bufferSize: bufferSize).stream
    }

    /// Calls `body` with the records that changed, on the thread that made
    /// the change (for a pulled page, the engine's own apply thread), until
    /// the returned handle is cancelled or released. `body` should return
    /// quickly: the pull's next page waits for it.
    public func subscribeChanges(
        _ body: @escaping @Sendable ([ChangeBatch]) -> Void
    ) -> SubscriptionHandle {
        subscribeChanges(listener: ChangeClosure(body))
    }

    /// Calls `body` with the connection state at once, then on every change,
    /// until the returned handle is cancelled or released.
    public func subscribeStatus(
        _ body: @escaping @Sendable (ConnectionStatus) -> Void
    ) -> SubscriptionHandle {
        subscribeStatus(listener: StatusClosure(body))
    }
}

extension RowsyncEngine {
    /// A live query's records (each a JSON object) at once, then again
    /// whenever a local write or a sync changes them, until the stream
    /// ends: the consuming task is cancelled, or the stream and its
    /// iterator are released. Its end stops the watch. The query is checked
    /// first: an unknown collection or a bad field throws `InvalidInput`.
    ///
    /// Results come from the engine's own live-query thread; a burst of
    /// writes gives a few, the last with the final records. Only the newest
    /// `bufferSize` wait for a slow consumer (the newest is what counts). A
    /// run that fails (the replica could not be read) yields nothing; the
    /// watch goes on.
    public func watch(_ query: RecordQuery, bufferSize: Int = 1) throws -> AsyncStream<[String]> {
        try watched(query, bufferSize: bufferSize).stream
    }
}

extension RowsyncEngine {
    /// `statusUpdates` and the subscription its end cancels (the tests
    /// watch the handle).
    func subscribedStatusUpdates(bufferSize: Int)
        -> (stream: AsyncStream<ConnectionStatus>, handle: SubscriptionHandle)
    {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ConnectionStatus.self, bufferingPolicy: .bufferingNewest(bufferSize))
        let handle = subscribeStatus(listener: StatusForwarder(continuation))
        continuation.onTermination = { _ in handle.cancel() }
        return (stream, handle)
    }

    /// `changes` and the subscription its end cancels.
    func subscribedChanges(bufferSize: Int)
        -> (stream: AsyncStream<[ChangeBatch]>, handle: SubscriptionHandle)
    {
        let (stream, continuation) = AsyncStream.makeStream(
            of: [ChangeBatch].self, bufferingPolicy: .bufferingOldest(bufferSize))
        let handle = subscribeChanges(listener: ChangeForwarder(continuation))
        continuation.onTermination = { _ in handle.cancel() }
        return (stream, handle)
    }
}

extension RowsyncEngine {
    /// `watch` and the handle its end cancels.
    func watched(_ query: RecordQuery, bufferSize: Int)
        throws -> (stream: AsyncStream<[String]>, handle: LiveQueryHandle)
    {
        let (stream, continuation) = AsyncStream.makeStream(
            of: [String].self, bufferingPolicy: .bufferingNewest(max(bufferSize, 1)))
        let handle = try watch(query: query, listener: RecordsForwarder(continuation))
        continuation.onTermination = { _ in handle.cancel() }
        return (stream, handle)
    }
}

private final class RecordsForwarder: QueryListener {
    let continuation: AsyncStream<[String]>.Continuation
    init(_ continuation: AsyncStream<[String]>.Continuation) {
        self.continuation = continuation
    }
    func onResult(records: [String]) { continuation.yield(records) }
    func onError(error: RowsyncError) {}
}

private final class StatusForwarder: StatusListener {
    let continuation: AsyncStream<ConnectionStatus>.Continuation
    init(_ continuation: AsyncStream<ConnectionStatus>.Continuation) {
        self.continuation = continuation
    }
    func onStatus(status: ConnectionStatus) { continuation.yield(status) }
}

private final class ChangeForwarder: ChangeListener {
    let continuation: AsyncStream<[ChangeBatch]>.Continuation
    init(_ continuation: AsyncStream<[ChangeBatch]>.Continuation) {
        self.continuation = continuation
    }
    func onChange(changes: [ChangeBatch]) { continuation.yield(changes) }
}

private final class ChangeClosure: ChangeListener {
    let body: @Sendable ([ChangeBatch]) -> Void
    init(_ body: @escaping @Sendable ([ChangeBatch]) -> Void) { self.body = body }
    func onChange(changes: [ChangeBatch]) { body(changes) }
}

private final class StatusClosure: StatusListener {
    let body: @Sendable (ConnectionStatus) -> Void
    init(_ body: @escaping @Sendable (ConnectionStatus) -> Void) { self.body = body }
    func onStatus(status: ConnectionStatus) { body(status) }
}
