//! Who made each pending change, for a device that changes hands
//! (DESIGN.md invariant 16): the author a new change gets (the settings'
//! user and, once that user's login told it, its visitor), the changes
//! of each user, what was exported of them, and the trail of the ones
//! discarded on purpose (`rs_discarded`), so that none goes without a
//! trace.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde_json::Value;

use super::db::{now, Author, Tx};
use super::meta;
use crate::error::Result;
use crate::record::Op;

/// A pending change as handed to the app: to export before it is
/// discarded, or to show who made it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PendingChange {
    /// The collection.
    pub collection: String,
    /// The server id, if the server has the record.
    pub server_id: Option<i64>,
    /// The client id.
    pub client_id: Option<i64>,
    /// `create`, `update` or `delete`.
    pub op: Op,
    /// The record as it would be sent.
    pub record: Value,
    /// The server's version the change was made on (none for a create).
    pub base: Option<Value>,
    /// The user that made it (none: not known).
    pub user: Option<String>,
    /// That user's visitor, if known.
    pub visitor_id: Option<i64>,
    /// When it was last edited (RFC 3339).
    pub changed_at: String,
    /// Its write group (changes of one group travel together).
    pub group_id: i64,
    /// Sent, its answer never came: the server may have it.
    pub in_doubt: bool,
    /// Parked in this dead letter, if the server refused it.
    pub dead_letter: Option<i64>,
    /// The record's local id (the replica's own).
    #[serde(skip)]
    pub(crate) local_id: i64,
    /// Bumped by each edit.
    #[serde(skip)]
    pub(crate) counter: i64,
}

/// The pending (and parked) changes of one user, with the number of
/// each.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserPending {
    /// The user (none: changes of an unknown user, sent under any login).
    pub user: Option<String>,
    /// The user's visitor, if known.
    pub visitor_id: Option<i64>,
    /// Changes waiting to be pushed.
    pub pending: u64,
    /// Changes parked in the dead-letter queue.
    pub parked: u64,
}

/// Reads who makes the changes written now.
fn read_author(conn: &Connection) -> Result<Author> {
    let user = meta::get(conn, meta::SETTINGS)?
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.get("username")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|u| !u.is_empty());
    let logged_in = meta::get(conn, meta::SESSION_USER)?;
    let visitor = match (&user, logged_in) {
        (Some(u), Some(l)) if *u == l => meta::get(conn, meta::SESSION)?
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.get("visitor_id").and_then(Value::as_i64))
            .filter(|&v| v != 0),
        _ => None,
    };
    Ok(Author { user, visitor })
}

impl Tx<'_> {
    /// Loads who makes the changes written now (cached until the settings
    /// or the session change); [`Tx::author`] then reads it.
    pub(crate) fn load_author(&mut self) -> Result<()> {
        if self.caches.author.is_none() {
            self.caches.author = Some(read_author(&self.tx)?);
        }
        Ok(())
    }

    /// The author [`Tx::load_author`] loaded (none before): borrowed, so
    /// that a write does not copy the user's name.
    pub(crate) fn author(&self) -> (Option<&str>, Option<i64>) {
        match &self.caches.author {
            Some(a) => (a.user.as_deref(), a.visitor),
            None => (None, None),
        }
    }

    /// Forgets the cached author when `key` is one it is read from.
    pub(super) fn forget_author(&mut self, key: &str) {
        if [meta::SETTINGS, meta::SESSION, meta::SESSION_USER].contains(&key) {
            self.caches.author = None;
        }
    }

    /// A login of `user` told its visitor: the user's changes made before
    /// it (offline, on a device just handed over) learn it.
    pub(crate) fn note_visitor(&self, user: &str, visitor: i64) -> Result<()> {
        if visitor == 0 {
            return Ok(());
        }
        self.tx
            .prepare_cached(
                "UPDATE rs_outbox SET author_visitor = ?2 WHERE author = ?1 AND author_visitor IS NULL",
            )?
            .execute(params![user, visitor])?;
        Ok(())
    }

    /// Keeps in the trail a change about to be discarded, and why.
    pub(crate) fn record_discarded(&self, c: &PendingChange, reason: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO rs_discarded(author, author_visitor, collection, server_id, client_id, op,
             record, base, changed_at, discarded_at, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                c.user,
                c.visitor_id,
                c.collection,
                c.server_id,
                c.client_id,
                c.op.as_str(),
                c.record.to_string(),
                c.base.as_ref().map(Value::to_string),
                c.changed_at,
                now(),
                reason
            ],
        )?;
        Ok(())
    }

    /// Remembers that `changes` of `user` were exported as they are now.
    pub(crate) fn note_export(&mut self, user: &str, changes: &[PendingChange]) -> Result<()> {
        let mut all = exports(&self.tx)?;
        all.insert(user.to_string(), fingerprint(changes));
        let text = serde_json::to_string(&all)?;
        self.set_meta(meta::EXPORTED, &text)
    }

    /// Forgets what was exported of `user`'s changes.
    pub(crate) fn forget_export(&mut self, user: &str) -> Result<()> {
        let mut all = exports(&self.tx)?;
        if all.remove(user).is_some() {
            let text = serde_json::to_string(&all)?;
            self.set_meta(meta::EXPORTED, &text)?;
        }
        Ok(())
    }
}

/// Each change's local id and counter: what an export saw.
fn fingerprint(changes: &[PendingChange]) -> Vec<(i64, i64)> {
    changes.iter().map(|c| (c.local_id, c.counter)).collect()
}

fn exports(conn: &Connection) -> Result<BTreeMap<String, Vec<(i64, i64)>>> {
    Ok(meta::get(conn, meta::EXPORTED)?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// True when `changes` of `user` were exported exactly as they are now
/// (none edited, added or gone since).
pub(crate) fn exported_as_is(
    conn: &Connection,
    user: &str,
    changes: &[PendingChange],
) -> Result<bool> {
    Ok(exports(conn)?.get(user) == Some(&fingerprint(changes)))
}

const CHANGE_SELECT: &str = "SELECT c.name, r.server_id, r.client_id, o.op, r.data, o.base,
    o.author, o.author_visitor, o.changed_at, o.group_id, o.sent_counter IS NOT NULL AND r.server_id IS NULL,
    o.parked, o.local_id, o.counter
    FROM rs_outbox o JOIN rs_records r ON r.local_id = o.local_id
    JOIN rs_collections c ON c.id = r.coll";

fn read_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PendingChange, String, Option<String>)> {
    Ok((
        PendingChange {
            collection: r.get(0)?,
            server_id: r.get(1)?,
            client_id: r.get::<_, Option<i64>>(2)?.filter(|&c| c != 0),
            op: r.get(3)?,
            record: Value::Null,
            base: None,
            user: r.get(6)?,
            visitor_id: r.get(7)?,
            changed_at: r.get(8)?,
            group_id: r.get(9)?,
            in_doubt: r.get(10)?,
            dead_letter: r.get(11)?,
            local_id: r.get(12)?,
            counter: r.get(13)?,
        },
        r.get(4)?,
        r.get(5)?,
    ))
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<(PendingChange, String, Option<String>)>>,
) -> Result<Vec<PendingChange>> {
    let mut out = Vec::new();
    for row in rows {
        let (mut c, data, base) = row?;
        c.record = serde_json::from_str(&data)?;
        c.base = base.map(|b| serde_json::from_str(&b)).transpose()?;
        out.push(c);
    }
    Ok(out)
}

/// The changes `user` made that are still in the outbox (parked ones
/// too), in push order.
pub fn changes_of(conn: &Connection, user: &str) -> Result<Vec<PendingChange>> {
    let mut stmt = conn.prepare(&format!(
        "{CHANGE_SELECT} WHERE o.author = ?1 ORDER BY o.seq"
    ))?;
    let rows = stmt.query_map([user], read_change)?;
    collect(rows)
}

/// Every change in the outbox, in push order.
pub(crate) fn all_changes(conn: &Connection) -> Result<Vec<PendingChange>> {
    let mut stmt = conn.prepare(&format!("{CHANGE_SELECT} ORDER BY o.seq"))?;
    let rows = stmt.query_map([], read_change)?;
    collect(rows)
}

/// The outbox by user, the oldest change's user first.
pub fn by_user(conn: &Connection) -> Result<Vec<UserPending>> {
    let mut stmt = conn.prepare_cached(
        "SELECT author, MAX(author_visitor), SUM(parked IS NULL), SUM(parked IS NOT NULL)
         FROM rs_outbox GROUP BY author ORDER BY MIN(seq)",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(UserPending {
            user: r.get(0)?,
            visitor_id: r.get(1)?,
            pending: r.get::<_, i64>(2)? as u64,
            parked: r.get::<_, i64>(3)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The first user other than `user` with changes waiting to be pushed
/// (not parked), and how many.
pub fn another_users(conn: &Connection, user: &str) -> Result<Option<(String, u64)>> {
    Ok(by_user(conn)?.into_iter().find_map(|u| match u.user {
        Some(name) if name != user && u.pending > 0 => Some((name, u.pending)),
        _ => None,
    }))
}

/// How many changes the trail holds.
pub fn discarded_count(conn: &Connection) -> Result<u64> {
    Ok(
        conn.query_row("SELECT COUNT(*) FROM rs_discarded", [], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

/// A change discarded on purpose, as the trail keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiscardedChange {
    /// The change as it was.
    pub change: PendingChange,
    /// When it was discarded (RFC 3339).
    pub discarded_at: String,
    /// Why.
    pub reason: String,
}

/// The trail of discarded changes, oldest first.
pub fn discarded(conn: &Connection) -> Result<Vec<DiscardedChange>> {
    let mut stmt = conn.prepare(
        "SELECT collection, server_id, client_id, op, record, base, author, author_visitor,
         changed_at, discarded_at, reason FROM rs_discarded ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Op>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, String>(9)?,
            r.get::<_, String>(10)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (
            collection,
            server_id,
            client_id,
            op,
            record,
            base,
            user,
            visitor_id,
            changed_at,
            at,
            reason,
        ) = row?;
        out.push(DiscardedChange {
            change: PendingChange {
                collection,
                server_id,
                client_id,
                op,
                record: serde_json::from_str(&record)?,
                base: base.map(|b| serde_json::from_str(&b)).transpose()?,
                user,
                visitor_id,
                changed_at,
                group_id: 0,
                in_doubt: false,
                dead_letter: None,
                local_id: 0,
                counter: 0,
            },
            discarded_at: at,
            reason,
        });
    }
    Ok(out)
}
