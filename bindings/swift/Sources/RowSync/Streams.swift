// The engine's listeners as Swift values: `AsyncStream`s of connection
// status and of data changes, and closures. The generated protocols
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
