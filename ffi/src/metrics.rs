//! The sync metrics as UniFFI records: a sync's network figures and phase
//! times ([`SyncMetricsSummary`], in each [`SyncSummary`](crate::SyncSummary))
//! and the running totals the replica keeps ([`EngineMetrics`]). Figures
//! only: no record content, no token.

use crate::types::CollectionSummary;

/// Retries by cause: each counts an attempt that failed and was made again.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct RetryCounts {
    /// No complete answer: the connection failed or broke.
    pub transport: u64,
    /// The answer stopped coming (a read timeout).
    pub stall: u64,
    /// A 5xx answer that may pass.
    pub server_error: u64,
    /// A 429 answer, its `Retry-After` honoured.
    pub rate_limited: u64,
    /// An answer cut short mid-body.
    pub cut_short: u64,
    /// The token was refused: a new login, then the call again.
    pub token_refresh: u64,
    /// Retries of every cause.
    pub total: u64,
}

/// Time per phase, in milliseconds (`login` and `apply` fall inside the
/// other phases; see the core's `Phases`).
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct PhaseTimes {
    /// Logging in.
    pub login_ms: u64,
    /// Pulling (fetching and applying pages).
    pub pull_ms: u64,
    /// Applying pulled pages.
    pub apply_ms: u64,
    /// Pushing the outbox.
    pub push_ms: u64,
    /// Sending uploads and disputes.
    pub tasks_ms: u64,
}

/// What a sync moved over the network (bodies' bytes), and its phases'
/// times.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct SyncMetricsSummary {
    /// HTTP requests: every attempt, logins and retries included.
    pub requests: u64,
    /// Of those, logins.
    pub login_requests: u64,
    /// Request bodies' bytes.
    pub bytes_sent: u64,
    /// Request bodies' bytes on the wire.
    pub wire_bytes_sent: u64,
    /// Answers' bytes, decoded.
    pub bytes_received: u64,
    /// Answers' bytes on the wire (compressed, when they came gzipped).
    pub wire_bytes_received: u64,
    /// Retries by cause.
    pub retries: RetryCounts,
    /// Time per phase.
    pub phases: PhaseTimes,
}

impl From<rowsync::SyncMetrics> for SyncMetricsSummary {
    fn from(m: rowsync::SyncMetrics) -> Self {
        let r = &m.retries;
        SyncMetricsSummary {
            requests: m.requests,
            login_requests: m.login_requests,
            bytes_sent: m.bytes_sent,
            wire_bytes_sent: m.wire_bytes_sent,
            bytes_received: m.bytes_received,
            wire_bytes_received: m.wire_bytes_received,
            retries: RetryCounts {
                transport: r.transport,
                stall: r.stall,
                server_error: r.server_error,
                rate_limited: r.rate_limited,
                cut_short: r.cut_short,
                token_refresh: r.token_refresh,
                total: r.total(),
            },
            phases: PhaseTimes {
                login_ms: m.phases.login_ms,
                pull_ms: m.phases.pull_ms,
                apply_ms: m.phases.apply_ms,
                push_ms: m.phases.push_ms,
                tasks_ms: m.phases.tasks_ms,
            },
        }
    }
}

/// The running totals of every sync the replica ran.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EngineMetrics {
    /// Syncs counted.
    pub syncs: u64,
    /// Of those, syncs that ended with an error.
    pub failed_syncs: u64,
    /// When the first counted sync started (RFC 3339); empty before.
    pub since: String,
    /// When the last counted sync ended (RFC 3339); empty before.
    pub last_sync_at: String,
    /// Network figures and phase times, summed.
    pub totals: SyncMetricsSummary,
    /// Records pulled in total.
    pub pulled: u64,
    /// Records pushed in total.
    pub pushed: u64,
    /// Figures summed per collection.
    pub collections: Vec<CollectionSummary>,
}

impl From<rowsync::Metrics> for EngineMetrics {
    fn from(m: rowsync::Metrics) -> Self {
        let (pulled, pushed) = (m.pulled(), m.pushed());
        EngineMetrics {
            syncs: m.syncs,
            failed_syncs: m.failed_syncs,
            since: m.since,
            last_sync_at: m.last_sync_at,
            totals: m.totals.into(),
            pulled,
            pushed,
            collections: m
                .collections
                .into_iter()
                .map(|(collection, c)| CollectionSummary::of(collection, c))
                .collect(),
        }
    }
}
