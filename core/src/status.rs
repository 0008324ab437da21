//! The connection state the app can show: what the client last learned
//! about the server, and what a running sync is doing; and how far the
//! device's clock is from the server's. A leaf: the client sets it, the
//! listeners carry it, the report keeps it.

use chrono::{DateTime, Utc};

/// What the client last learned about the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Nothing known yet (or the client was disconnected).
    Unknown,
    /// The last attempt got a response.
    Online,
    /// The last call ran out of attempts on transport errors or 5xx.
    Offline {
        /// When a retry would make sense.
        next_attempt: Option<DateTime<Utc>>,
    },
    /// The server stalls: an answer of `endpoint` stopped coming (no
    /// headers, or a body stopped mid-way) past the read timeout. Set at
    /// the first stall, while the call is tried again; a second stall in a
    /// row ends the call with `Error::Stalled`.
    Stalled {
        /// The endpoint whose answer stalled.
        endpoint: String,
    },
    /// Login was refused (1001, 1002) or a token was refused twice in a row.
    AuthFailed,
    /// A sync is running. The client never sets this itself; the engine
    /// reports it over the client's state while it runs a sync.
    Syncing,
    /// A sync is sending the upload queue: file `file` of `files` (from
    /// 1), of `bytes` bytes, is on its way. Back to `Syncing` after the
    /// last one.
    Uploading {
        /// The upload's id in the queue.
        upload_id: i64,
        /// Which file of this sync's uploads, from 1.
        file: u32,
        /// Uploads this sync is sending.
        files: u32,
        /// The file's size.
        bytes: u64,
        /// Bytes of this sync's uploads sent so far, the current file's
        /// as they go out (told every 64 KiB).
        bytes_done: u64,
        /// Bytes of all of this sync's uploads.
        bytes_total: u64,
    },
    /// A notice, not a lasting state: a login just found the device's
    /// clock `skew_seconds` away from the server's (`ServerTime`), further
    /// than `Settings::clock_skew_warning_seconds`. Status listeners are
    /// told it at once; the state then goes on as before (`Syncing`, then
    /// `Online`...), and `Engine::status().connection` never stays on it.
    /// The lasting figures are `clock_skew_seconds` and
    /// `clock_skew_warning` on the status and the sync report. Nothing is
    /// refused and no date is changed because of it.
    ClockSkewed {
        /// The device's clock minus the server's, in seconds: positive
        /// when the device is ahead.
        skew_seconds: i64,
    },
    /// The picture cache is fetching: picture `picture` of `pictures`
    /// (from 1) is on its way, after the sync's pull and push (or in
    /// `Engine::sync_pictures`). Back to the server's state after the last
    /// one; a picture that fails changes nothing else.
    FetchingPictures {
        /// Which picture of this run, from 1.
        picture: u32,
        /// Pictures this run fetches.
        pictures: u32,
        /// Bytes of this run's pictures fetched so far.
        bytes_done: u64,
    },
}

/// The default of `Settings::clock_skew_warning_seconds`: 13 minutes, past
/// which the vendor's app refuses to work (WIRE.md section 2).
pub const DEFAULT_CLOCK_SKEW_WARNING_SECONDS: u64 = 13 * 60;

/// True when `skew_seconds` (device minus server) is further from zero than
/// `threshold` seconds; a threshold of 0 never warns, an unknown skew never
/// does.
pub fn clock_skew_warns(skew_seconds: Option<i64>, threshold: u64) -> bool {
    match skew_seconds {
        Some(skew) if threshold > 0 => skew.unsigned_abs() > threshold,
        _ => false,
    }
}

/// The device's clock minus the server's, in seconds (rounded to the
/// nearest), or `None` when the server did not say its time.
pub fn clock_skew(device_now: DateTime<Utc>, server_now: Option<DateTime<Utc>>) -> Option<i64> {
    let ms = device_now
        .signed_duration_since(server_now?)
        .num_milliseconds();
    Some((ms + 500 * ms.signum()) / 1000)
}
