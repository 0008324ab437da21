//! The dead-letter queue: change groups and tasks the server refused, kept
//! with its words until the app retries or discards them (DESIGN.md
//! invariant 3: parked, never dropped).

use rusqlite::{params, Connection};
use serde_json::Value;

use super::db::{now, Tx};
use crate::error::Result;
use crate::record::Op;

/// A change kept in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadChange {
    /// Collection.
    pub collection: String,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id.
    pub client_id: Option<i64>,
    /// The change.
    pub op: Op,
    /// The record as it would be sent.
    pub record: Value,
}

/// A dead letter: a change group the server rejected, with the reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    /// Entry id.
    pub id: i64,
    /// Mahak error code (2001, 3001, or another).
    pub code: i64,
    /// The server's message.
    pub message: String,
    /// The collection the server named.
    pub entity: Option<String>,
    /// The field the server named.
    pub field: Option<String>,
    /// Tracking id of the rejecting response.
    pub tracking_id: Option<String>,
    /// When it was parked (RFC 3339).
    pub parked_at: String,
    /// The changes of the group.
    pub changes: Vec<DeadChange>,
    /// The upload or dispute parked in it, if it holds one instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<crate::tasks::TaskInfo>,
}

impl Tx<'_> {
    /// Parks changes in a new dead letter.
    pub fn park(
        &self,
        local_ids: &[i64],
        code: i64,
        message: &str,
        entity: Option<&str>,
        field: Option<&str>,
        tracking_id: Option<&str>,
    ) -> Result<i64> {
        self.tx.execute(
            "INSERT INTO rs_dead_letters(code, message, entity, field, tracking_id, parked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![code, message, entity, field, tracking_id, now()],
        )?;
        let id = self.tx.last_insert_rowid();
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_outbox SET parked = ?2, sent_counter = NULL WHERE local_id = ?1",
        )?;
        for &l in local_ids {
            stmt.execute(params![l, id])?;
        }
        Ok(id)
    }

    /// Returns a dead letter's changes to the outbox; false if no such entry.
    pub fn unpark(&self, id: i64) -> Result<bool> {
        self.tx.execute(
            "UPDATE rs_outbox SET parked = NULL, sent_counter = NULL WHERE parked = ?1",
            [id],
        )?;
        // A retried upload or dispute is sent again: the app decided.
        self.tx.execute(
            "UPDATE rs_tasks SET parked = NULL, sent = 0, last_error = NULL WHERE parked = ?1",
            [id],
        )?;
        Ok(self
            .tx
            .execute("DELETE FROM rs_dead_letters WHERE id = ?1", [id])?
            == 1)
    }

    /// Deletes a dead-letter row (its changes already handled).
    pub fn delete_dead_letter(&self, id: i64) -> Result<bool> {
        // Uploads and disputes parked in it go with it (their files too).
        self.tx
            .execute("DELETE FROM rs_tasks WHERE parked = ?1", [id])?;
        Ok(self
            .tx
            .execute("DELETE FROM rs_dead_letters WHERE id = ?1", [id])?
            == 1)
    }
}

/// Dead letters with their changes, oldest first.
pub fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare(
        "SELECT id, code, message, entity, field, tracking_id, parked_at FROM rs_dead_letters ORDER BY id",
    )?;
    let letters = stmt
        .query_map([], |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                code: r.get(1)?,
                message: r.get(2)?,
                entity: r.get(3)?,
                field: r.get(4)?,
                tracking_id: r.get(5)?,
                parked_at: r.get(6)?,
                changes: Vec::new(),
                tasks: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut changes = conn.prepare(
        "SELECT c.name, r.server_id, r.client_id, o.op, r.data FROM rs_outbox o
         JOIN rs_records r ON r.local_id = o.local_id JOIN rs_collections c ON c.id = r.coll
         WHERE o.parked = ?1 ORDER BY o.seq",
    )?;
    let mut out = Vec::with_capacity(letters.len());
    for mut letter in letters {
        let rows = changes.query_map([letter.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (collection, server_id, client_id, op, data) = row?;
            letter.changes.push(DeadChange {
                collection,
                server_id,
                client_id,
                op: Op::parse(&op)?,
                record: serde_json::from_str(&data)?,
            });
        }
        letter.tasks = super::tasks::list_parked(conn, letter.id)?;
        out.push(letter);
    }
    Ok(out)
}

/// The local ids parked in a dead letter.
pub fn parked_in(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT local_id FROM rs_outbox WHERE parked = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The collection of record `local_id`.
pub(crate) fn collection_of(conn: &Connection, local_id: i64) -> Result<String> {
    Ok(conn.query_row(
        "SELECT c.name FROM rs_collections c JOIN rs_records r ON r.coll = c.id WHERE r.local_id = ?1",
        [local_id],
        |r| r.get(0),
    )?)
}
