//! The picture cache's index (`rs_pictures`): per picture id, the server's
//! file name and hash a file was fetched for, the file's name in the cache
//! directory, its size, when it was last used (a counter, not a clock), its
//! state, and the last failure. The files are the picture step's
//! (`sync/pictures.rs`); this file only keeps the index.

use rusqlite::{params, Connection, OptionalExtension};

use super::db::Tx;
use crate::error::{Error, Result};

/// Where a picture of the cache stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PictureState {
    /// Its file is in the cache, whole.
    Ready,
    /// No file yet: the last fetch failed, a later run tries again.
    Failed,
    /// Its file was evicted to keep the cache under its cap; fetched again
    /// only once the app asks for it.
    Evicted,
    /// Evicted, then asked for: the next run fetches it.
    Asked,
}

impl PictureState {
    fn as_str(self) -> &'static str {
        match self {
            PictureState::Ready => "ready",
            PictureState::Failed => "failed",
            PictureState::Evicted => "evicted",
            PictureState::Asked => "asked",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "ready" => PictureState::Ready,
            "failed" => PictureState::Failed,
            "evicted" => PictureState::Evicted,
            "asked" => PictureState::Asked,
            other => return Err(Error::Database(format!("unknown picture state `{other}`"))),
        })
    }
}

/// One picture of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PictureEntry {
    /// The picture's server id.
    pub(crate) picture_id: i64,
    /// The server's file name (or URL) the local file was fetched for.
    pub(crate) file_name: String,
    /// The server's hash the local file was fetched for, if it gave one.
    pub(crate) hash: Option<String>,
    /// The file's name in the cache directory, while there is one.
    pub(crate) local_name: Option<String>,
    /// The file's size in bytes.
    pub(crate) size: u64,
    /// When it was last used: a counter over the whole cache.
    pub(crate) last_used: i64,
    /// Where it stands.
    pub(crate) state: PictureState,
    /// Failed fetches since the last good one.
    pub(crate) attempts: u32,
    /// The last failure, if the last fetch failed.
    pub(crate) last_error: Option<String>,
}

const COLUMNS: &str =
    "picture_id, file_name, hash, local_name, size, last_used, state, attempts, last_error";

fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PictureEntry, String)> {
    Ok((
        PictureEntry {
            picture_id: r.get(0)?,
            file_name: r.get(1)?,
            hash: r.get(2)?,
            local_name: r.get(3)?,
            size: r.get::<_, i64>(4)?.max(0) as u64,
            last_used: r.get(5)?,
            state: PictureState::Ready,
            attempts: r.get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
            last_error: r.get(8)?,
        },
        r.get(6)?,
    ))
}

fn with_state((mut entry, state): (PictureEntry, String)) -> Result<PictureEntry> {
    entry.state = PictureState::parse(&state)?;
    Ok(entry)
}

/// Every picture of the index, by picture id.
pub(crate) fn entries(conn: &Connection) -> Result<Vec<PictureEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rs_pictures ORDER BY picture_id"
    ))?;
    let rows = stmt.query_map([], read_entry)?;
    rows.map(|r| with_state(r?)).collect()
}

/// Picture `id` of the index.
pub(crate) fn entry(conn: &Connection, id: i64) -> Result<Option<PictureEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rs_pictures WHERE picture_id = ?1"
    ))?;
    stmt.query_row([id], read_entry)
        .optional()?
        .map(with_state)
        .transpose()
}

/// The live records of collection `coll` that have a server id, as
/// `(server id, JSON text)`, by server id.
pub(crate) fn live_records(conn: &Connection, coll: i64) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT server_id, data FROM rs_records
         WHERE coll = ?1 AND server_id IS NOT NULL AND deleted = 0 ORDER BY server_id",
    )?;
    let rows = stmt.query_map([coll], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Tx<'_> {
    /// Writes `entry` (a new one, or over the one of its picture id).
    pub(crate) fn put_picture(&self, entry: &PictureEntry) -> Result<()> {
        self.tx
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO rs_pictures({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                entry.picture_id,
                entry.file_name,
                entry.hash,
                entry.local_name,
                i64::try_from(entry.size).unwrap_or(i64::MAX),
                entry.last_used,
                entry.state.as_str(),
                i64::from(entry.attempts),
                entry.last_error,
            ])?;
        Ok(())
    }

    /// Forgets picture `id`.
    pub(crate) fn forget_picture(&self, id: i64) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM rs_pictures WHERE picture_id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Marks picture `id` used now; returns the use's counter.
    pub(crate) fn touch_picture(&self, id: i64) -> Result<i64> {
        let now = next_use(&self.tx)?;
        self.tx
            .prepare_cached("UPDATE rs_pictures SET last_used = ?2 WHERE picture_id = ?1")?
            .execute(params![id, now])?;
        Ok(now)
    }

    /// Sets picture `id`'s state.
    pub(crate) fn set_picture_state(&self, id: i64, state: PictureState) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE rs_pictures SET state = ?2 WHERE picture_id = ?1")?
            .execute(params![id, state.as_str()])?;
        Ok(())
    }
}

/// The counter of the next use (above every use so far).
pub(crate) fn next_use(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(last_used), 0) + 1 FROM rs_pictures")?
        .query_row([], |r| r.get(0))?)
}
