// What Swift adds to the generated `RowsyncError`. UniFFI already makes it a
// Swift enum conforming to `Error` (and `Equatable`, `Sendable`), one case
// per variant of the Rust error with its fields as labelled associated
// values, so an app catches the cases it acts on:
//
//     do { _ = try await engine.sync() }
//     catch RowsyncError.Offline(let detail, _) { /* kept; retry later */ }
//     catch RowsyncError.ReplicaMismatch(let what, let replica, let server) { ... }
//     catch RowsyncError.WrongKey { ... }
//
// The case names are UniFFI's (UpperCamelCase, as Kotlin's
// `RowsyncException.Offline`); wrapping them in a second enum only to
// lower their first letter would double every catch site's vocabulary.

extension RowsyncError {
    /// True for the failures a later sync may get past on its own (the
    /// server unreachable or stalling, rate limiting, 5xx): the changes
    /// stay queued.
    /// The others need the app or the user (credentials, a fix, a key).
    public var isTransient: Bool {
        switch self {
        case .Offline, .Stalled, .RateLimited, .Server: return true
        default: return false
        }
    }
}
