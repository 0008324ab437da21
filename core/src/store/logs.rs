//! The logs the app can read: the conflict log (how each conflict was
//! resolved) and the sync log (one row per HTTP attempt, never a secret).

use rusqlite::{params, Connection};
use serde_json::Value;

use super::db::{now, Tx};
use crate::calls::CallRecord;
use crate::error::Result;

/// Kept sync-log rows; older ones are dropped.
pub const SYNC_LOG_LIMIT: i64 = 1_000;

/// A conflict-log entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConflictEntry {
    /// Entry id.
    pub id: i64,
    /// Collection.
    pub collection: String,
    /// Server id of the record.
    pub server_id: Option<i64>,
    /// Client id of the record.
    pub client_id: Option<i64>,
    /// The base version (last server version seen), if any.
    pub base: Option<Value>,
    /// The local version that lost something.
    pub local: Option<Value>,
    /// The server version.
    pub server: Option<Value>,
    /// Fields whose local value was discarded or overridden.
    pub fields: Vec<String>,
    /// How it was resolved (`server_wins`, `field_merge`, ...).
    pub resolution: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A sync-log row: one HTTP call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyncLogEntry {
    /// Row id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Endpoint, e.g. `GetAllDataV2`.
    pub endpoint: String,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The response's tracking id.
    pub tracking_id: Option<String>,
    /// The error, if the call failed.
    pub error: Option<String>,
}

fn parse_opt(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl Tx<'_> {
    /// Appends a conflict-log entry.
    #[allow(clippy::too_many_arguments)]
    pub fn log_conflict(
        &self,
        collection: &str,
        server_id: Option<i64>,
        client_id: Option<i64>,
        base: Option<&str>,
        local: Option<&str>,
        server: Option<&str>,
        fields: &[String],
        resolution: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO rs_conflicts(collection, server_id, client_id, base, local, server, fields, resolution, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                collection,
                server_id,
                client_id,
                base,
                local,
                server,
                serde_json::to_string(fields)?,
                resolution,
                now()
            ])?;
        Ok(())
    }

    /// Appends sync-log rows and drops the oldest beyond the limit.
    pub fn append_sync_log(&self, entries: &[CallRecord]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO rs_sync_log(at, endpoint, status, duration_ms, tracking_id, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for e in entries {
            stmt.execute(params![
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                e.endpoint,
                e.status,
                e.duration_ms as i64,
                e.tracking_id,
                e.error
            ])?;
        }
        self.tx.execute(
            "DELETE FROM rs_sync_log WHERE id <= (SELECT MAX(id) FROM rs_sync_log) - ?1",
            [SYNC_LOG_LIMIT],
        )?;
        Ok(())
    }
}

/// The conflict log, oldest first.
pub fn conflicts(conn: &Connection) -> Result<Vec<ConflictEntry>> {
    let mut stmt = conn.prepare(
        "SELECT id, collection, server_id, client_id, base, local, server, fields, resolution, at
         FROM rs_conflicts ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, String>(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, collection, server_id, client_id, base, local, server, fields, resolution, at) =
            row?;
        out.push(ConflictEntry {
            id,
            collection,
            server_id,
            client_id,
            base: parse_opt(base),
            local: parse_opt(local),
            server: parse_opt(server),
            fields: serde_json::from_str(&fields).unwrap_or_default(),
            resolution,
            at,
        });
    }
    Ok(out)
}

/// Clears the conflict log; returns how many entries were removed.
pub fn clear_conflicts(conn: &Connection) -> Result<u64> {
    Ok(conn.execute("DELETE FROM rs_conflicts", [])? as u64)
}

/// The newest sync-log rows, newest first.
pub fn sync_log(conn: &Connection, limit: u32) -> Result<Vec<SyncLogEntry>> {
    let mut stmt = conn.prepare(
        "SELECT id, at, endpoint, status, duration_ms, tracking_id, error FROM rs_sync_log ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(SyncLogEntry {
            id: r.get(0)?,
            at: r.get(1)?,
            endpoint: r.get(2)?,
            status: r.get(3)?,
            duration_ms: r.get::<_, i64>(4)?.max(0) as u64,
            tracking_id: r.get(5)?,
            error: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
