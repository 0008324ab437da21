//! The outbox: each record's one pending change, coalesced with later
//! edits, marked with what was sent, and cleared only when the server
//! confirmed it or a conflict rule resolved it (DESIGN.md invariants 3
//! and 5).

use rusqlite::{params, Connection, OptionalExtension};

use super::db::{now, Tx};
use crate::error::Result;
use crate::record::Op;

/// An outbox row: the one pending change of a record.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The record.
    pub local_id: i64,
    /// Write group: changes of one group are pushed together.
    pub group_id: i64,
    /// `create`, `update` or `delete`.
    pub op: Op,
    /// Bumped by every coalesced edit.
    pub counter: i64,
    /// `counter` when the change was last sent.
    pub sent_counter: Option<i64>,
    /// The record as last sent (JSON text), while `sent_counter` is set.
    pub sent_data: Option<String>,
    /// Last server version seen (JSON text), none for a create.
    pub base: Option<String>,
    /// Dead letter holding this change, if parked.
    pub parked: Option<i64>,
    /// The user that made it (none: not known, a replica set up before
    /// changes remembered it, with no user name).
    pub author: Option<String>,
    /// That user's visitor, once a login of that user told it.
    pub author_visitor: Option<i64>,
}

impl Tx<'_> {
    /// Inserts a new pending change, made by the current user (the
    /// settings' user name) and its visitor when its login is the stored
    /// one.
    pub fn insert_pending(
        &mut self,
        local_id: i64,
        group_id: i64,
        op: Op,
        base: Option<&str>,
    ) -> Result<()> {
        let seq = self.next_seq();
        self.load_author()?;
        let (author, author_visitor) = self.author();
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO rs_outbox(local_id, seq, group_id, op, counter, sent_counter, base, parked, changed_at,
             author, author_visitor)
             VALUES (?1, ?2, ?3, ?4, 1, NULL, ?5, NULL, ?6, ?7, ?8)",
        )?;
        stmt.execute(params![
            local_id,
            seq,
            group_id,
            op.as_str(),
            base,
            now(),
            author,
            author_visitor
        ])?;
        Ok(())
    }

    /// Records a further edit of a pending change: its op and a bumped
    /// counter. The change keeps the user that made it first (another
    /// user's edit of it goes out with it, under that user).
    pub fn touch_pending(&self, local_id: i64, op: Op) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_outbox SET op = ?2, counter = counter + 1, changed_at = ?3 WHERE local_id = ?1",
        )?;
        stmt.execute(params![local_id, op.as_str(), now()])?;
        Ok(())
    }

    /// After a conflict resolution that leaves a change to push: new op and
    /// base, a bumped counter, not in flight.
    pub fn rebase_pending(&self, local_id: i64, op: Op, base: &str) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_outbox SET op = ?2, base = ?3, counter = counter + 1, sent_counter = NULL, changed_at = ?4
             WHERE local_id = ?1",
        )?;
        stmt.execute(params![local_id, op.as_str(), base, now()])?;
        Ok(())
    }

    /// Drops a pending change (confirmed or resolved), and the dead letter it
    /// was parked in once that holds nothing more.
    pub fn drop_pending(&self, local_id: i64) -> Result<()> {
        let parked: Option<Option<i64>> = self
            .tx
            .prepare_cached("SELECT parked FROM rs_outbox WHERE local_id = ?1")?
            .query_row([local_id], |r| r.get(0))
            .optional()?;
        self.tx
            .prepare_cached("DELETE FROM rs_outbox WHERE local_id = ?1")?
            .execute([local_id])?;
        if let Some(Some(dl)) = parked {
            self.tx.execute(
                "DELETE FROM rs_dead_letters WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM rs_outbox WHERE parked = ?1)",
                [dl],
            )?;
        }
        Ok(())
    }

    /// Marks changes as sent with the counter they had and the record as
    /// it went out.
    pub fn mark_sent(&self, local_id: i64, counter: i64, data: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE rs_outbox SET sent_counter = ?2, sent_data = ?3 WHERE local_id = ?1",
            )?
            .execute(params![local_id, counter, data])?;
        Ok(())
    }

    /// Marks a change as not sent: an in-doubt create that a pull showed the
    /// server does not have, safe to send again.
    pub fn clear_sent(&self, local_id: i64) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE rs_outbox SET sent_counter = NULL WHERE local_id = ?1")?
            .execute([local_id])?;
        Ok(())
    }

    /// A confirmed send that a later edit overtook: the record now exists on
    /// the server as `base`; the newer edit stays pending.
    pub fn confirm_overtaken(&self, local_id: i64, base: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE rs_outbox SET op = CASE op WHEN 'create' THEN 'update' ELSE op END,
                 base = ?2, sent_counter = NULL WHERE local_id = ?1",
            )?
            .execute(params![local_id, base])?;
        Ok(())
    }
}

const PENDING_COLUMNS: &str =
    "local_id, seq, group_id, op, counter, sent_counter, base, parked, sent_data, author, author_visitor";

fn read_pending(r: &rusqlite::Row<'_>) -> rusqlite::Result<Pending> {
    Ok(Pending {
        local_id: r.get(0)?,
        group_id: r.get(2)?,
        op: r.get(3)?,
        counter: r.get(4)?,
        sent_counter: r.get(5)?,
        base: r.get(6)?,
        parked: r.get(7)?,
        sent_data: r.get(8)?,
        author: r.get(9)?,
        author_visitor: r.get(10)?,
    })
}

/// The pending change of a record, if any.
pub fn pending_of(conn: &Connection, local_id: i64) -> Result<Option<Pending>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PENDING_COLUMNS} FROM rs_outbox WHERE local_id = ?1"
    ))?;
    Ok(stmt.query_row([local_id], read_pending).optional()?)
}

/// Pending (not parked) changes in push order, with their collection names.
pub fn pending_in_order(conn: &Connection) -> Result<Vec<(String, Pending)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.local_id, o.seq, o.group_id, o.op, o.counter, o.sent_counter, o.base, o.parked,
         NULL, o.author, o.author_visitor, c.name
         FROM rs_outbox o JOIN rs_records r ON r.local_id = o.local_id JOIN rs_collections c ON c.id = r.coll
         WHERE o.parked IS NULL ORDER BY o.seq",
    )?;
    // The last sent record is not read here (`sent_data` is NULL): only a
    // pull needs it, for one record.
    let rows = stmt.query_map([], |r| Ok((read_pending(r)?, r.get::<_, String>(11)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (p, name) = row?;
        out.push((name, p));
    }
    Ok(out)
}

/// True when the record's pending change is parked.
pub fn is_parked(conn: &Connection, local_id: i64) -> Result<bool> {
    let parked: Option<Option<i64>> = conn
        .prepare_cached("SELECT parked FROM rs_outbox WHERE local_id = ?1")?
        .query_row([local_id], |r| r.get(0))
        .optional()?;
    Ok(matches!(parked, Some(Some(_))))
}

/// The creates in doubt (sent, never confirmed, not parked) of `user`
/// (and of no known user), with their collection, in outbox order. A
/// record with no server id was created here, whatever its change has
/// become since (a delete, after a create whose answer was lost, is one
/// too). Another user's are left alone: a pull under this login may not
/// show that user's records, so it cannot tell they are missing.
pub fn in_doubt(conn: &Connection, user: &str) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.name, o.local_id FROM rs_outbox o
         JOIN rs_records r ON r.local_id = o.local_id
         JOIN rs_collections c ON c.id = r.coll
         WHERE o.parked IS NULL AND o.sent_counter IS NOT NULL
           AND r.server_id IS NULL AND (o.author IS NULL OR o.author = ?1)
         ORDER BY o.seq",
    )?;
    let rows = stmt.query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
