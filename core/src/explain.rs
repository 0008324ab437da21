//! "Why isn't this record syncing?" (issue 13, part 5): where one record
//! stands, derived from what the replica holds (the record, its outbox
//! entry, the dead-letter queue, the conflict log, the last sync). Exactly
//! one state is true at a time; the order of the checks below decides
//! between them.

use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::Value;

use crate::catalogue::CollectionDef;
use crate::error::Result;
use crate::record::{Op, RecordId};
use crate::store::{self, ConflictEntry, Row};

/// Where one record stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Explanation {
    /// The replica has never held this record.
    NeverSeen,
    /// On the server as the replica holds it, at `row_version`.
    Synced {
        /// The server id.
        server_id: Option<i64>,
        /// The version the replica holds.
        row_version: Option<i64>,
        /// When the last sync that succeeded ended (RFC 3339), if known.
        last_sync_at: Option<String>,
    },
    /// A local change waits for the next sync.
    Pending {
        /// The kind of change.
        op: Op,
        /// When the change was last made (RFC 3339).
        since: String,
        /// Why the last sync ended early, if it did.
        last_error: Option<String>,
        /// The user that made it, if known.
        user: Option<String>,
        /// That user's visitor, if known.
        visitor_id: Option<i64>,
    },
    /// The change was made by another user than the one signed in now (a
    /// shared device changed hands): it goes out only under that user's
    /// login, or is exported and discarded.
    WaitingForUser {
        /// The kind of change.
        op: Op,
        /// When the change was last made (RFC 3339).
        since: String,
        /// The user that made it.
        user: String,
        /// That user's visitor, if known.
        visitor_id: Option<i64>,
        /// The user signed in now (the settings' one).
        current_user: String,
    },
    /// The change waits behind its parent's create, which another user
    /// made and which goes out only under that user's login.
    WaitingForUsersParent {
        /// The parent's collection.
        collection: String,
        /// The parent's client id.
        client_id: Option<i64>,
        /// The user that made the parent.
        user: String,
    },
    /// A sync is sending the change right now.
    InFlight {
        /// The kind of change.
        op: Op,
    },
    /// The change was sent but its answer never came: the next sync
    /// reconciles it by a pull before anything is sent again.
    InDoubt {
        /// The kind of change.
        op: Op,
        /// When the change was last made (RFC 3339).
        since: String,
    },
    /// The server refused the change: it is parked in the dead-letter queue.
    Parked {
        /// The dead letter (`retry_dead_letter` / `discard_dead_letter`).
        dead_letter: i64,
        /// The server's code (0 when it gave none).
        code: i64,
        /// The server's words.
        message: String,
        /// The field the server named.
        field: Option<String>,
        /// The server's tracking id.
        tracking_id: Option<String>,
    },
    /// The change waits behind its parent's, which is parked.
    WaitingForParent {
        /// The parent's collection.
        collection: String,
        /// The parent's server id, if it has one.
        server_id: Option<i64>,
        /// The parent's client id.
        client_id: Option<i64>,
        /// The dead letter holding the parent.
        dead_letter: i64,
    },
    /// A local change met a newer server version, and a conflict rule
    /// overrode it (the log entry says how).
    Overridden {
        /// The conflict-log entry.
        conflict: ConflictEntry,
    },
    /// Deleted (locally and confirmed, or on the server): a tombstone.
    Deleted {
        /// The server id.
        server_id: Option<i64>,
        /// The version of the tombstone.
        row_version: Option<i64>,
    },
}

impl Explanation {
    /// The state in plain words, for the CLI and a support desk.
    pub fn words(&self) -> String {
        match self {
            Explanation::NeverSeen => "never seen: this replica has no such record".into(),
            Explanation::Synced {
                row_version,
                last_sync_at,
                ..
            } => format!(
                "synced: the server has it as this replica does (version {}){}",
                row_version.map_or("-".to_string(), |v| v.to_string()),
                last_sync_at
                    .as_deref()
                    .map_or(String::new(), |t| format!("; last sync {t}"))
            ),
            Explanation::Pending {
                op,
                since,
                last_error,
                user,
                ..
            } => format!(
                "pending: a local {} made at {since}{} waits for the next sync{}",
                op.as_str(),
                user.as_deref()
                    .map_or(String::new(), |u| format!(" by `{u}`")),
                last_error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" (the last one ended: {e})"))
            ),
            Explanation::WaitingForUser {
                op,
                since,
                user,
                current_user,
                ..
            } => format!(
                "waiting for its user: a local {} made at {since} by `{user}` goes out only when `{user}` signs in and syncs (signed in now: `{current_user}`); or export and discard it",
                op.as_str()
            ),
            Explanation::WaitingForUsersParent {
                collection,
                client_id,
                user,
            } => format!(
                "waiting: its parent in `{collection}` ({}) is a create of user `{user}` that goes out only when `{user}` signs in and syncs",
                client_id.map_or("?".to_string(), |c| format!("c:{c}"))
            ),
            Explanation::InFlight { op } => {
                format!("in flight: a sync is sending its {} now", op.as_str())
            }
            Explanation::InDoubt { op, since } => format!(
                "in doubt: its {} (made at {since}) was sent but the answer never came; the next sync checks the server before sending anything again",
                op.as_str()
            ),
            Explanation::Parked {
                dead_letter,
                code,
                message,
                field,
                tracking_id,
            } => format!(
                "parked: the server refused it ({}{}{}); dead letter {dead_letter}: fix and `dlq retry {dead_letter}`, or `dlq discard {dead_letter}`",
                if *code != 0 { format!("code {code}: ") } else { String::new() },
                message,
                match (field, tracking_id) {
                    (Some(f), Some(t)) => format!("; field {f}; tracking id {t}"),
                    (Some(f), None) => format!("; field {f}"),
                    (None, Some(t)) => format!("; tracking id {t}"),
                    (None, None) => String::new(),
                }
            ),
            Explanation::WaitingForParent {
                collection,
                server_id,
                client_id,
                dead_letter,
            } => format!(
                "waiting: its parent in `{collection}` ({}) is parked in dead letter {dead_letter}",
                match (server_id, client_id) {
                    (Some(s), _) => s.to_string(),
                    (None, Some(c)) => format!("c:{c}"),
                    (None, None) => "?".into(),
                }
            ),
            Explanation::Overridden { conflict } => format!(
                "overridden: a local change met a newer server version ({}; fields {}) at {}",
                conflict.resolution,
                conflict.fields.join(", "),
                conflict.at
            ),
            Explanation::Deleted { row_version, .. } => format!(
                "deleted (a tombstone at version {})",
                row_version.map_or("-".to_string(), |v| v.to_string())
            ),
        }
    }
}

/// Where record `id` of `def` stands. `user`: the user signed in now;
/// `syncing`: a sync is running now; `last_sync`: when the last successful
/// sync ended, and why the last one that failed did.
#[allow(clippy::too_many_arguments)]
pub(crate) fn explain(
    conn: &rusqlite::Connection,
    def: &CollectionDef,
    id: RecordId,
    user: &str,
    syncing: bool,
    last_sync_at: Option<String>,
    last_error: Option<String>,
) -> Result<Explanation> {
    let coll = store::coll_id_of(conn, &def.name)?;
    let row = match id {
        RecordId::Server(s) => store::row_by_server_id(conn, coll, s)?,
        RecordId::Client(c) => store::row_by_client_id(conn, coll, c)?,
    };
    let Some(row) = row else {
        return Ok(Explanation::NeverSeen);
    };
    if let Some(p) = store::pending_of(conn, row.local_id)? {
        if let Some(dl) = p.parked {
            return parked(conn, dl);
        }
        if let Some(parent) = parked_parent(conn, def, &row)? {
            return Ok(parent);
        }
        let since: String = conn
            .query_row(
                "SELECT changed_at FROM rs_outbox WHERE local_id = ?1",
                [row.local_id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_default();
        if p.sent_counter.is_some() {
            if syncing {
                return Ok(Explanation::InFlight { op: p.op });
            }
            return Ok(Explanation::InDoubt { op: p.op, since });
        }
        if let Some(author) = p.author.clone().filter(|a| a != user) {
            return Ok(Explanation::WaitingForUser {
                op: p.op,
                since,
                user: author,
                visitor_id: p.author_visitor,
                current_user: user.to_string(),
            });
        }
        if let Some(parent) = users_parent(conn, def, &row, user)? {
            return Ok(parent);
        }
        return Ok(Explanation::Pending {
            op: p.op,
            since,
            last_error,
            user: p.author,
            visitor_id: p.author_visitor,
        });
    }
    if row.deleted {
        return Ok(Explanation::Deleted {
            server_id: row.server_id,
            row_version: row.row_version,
        });
    }
    // The replica holds the version a conflict rule chose: overridden.
    let latest = store::conflicts(conn)?.into_iter().rev().find(|c| {
        c.collection == def.name
            && ((row.server_id.is_some() && c.server_id == row.server_id)
                || (row.client_id.is_some_and(|x| x != 0) && c.client_id == row.client_id))
    });
    if let Some(c) = latest {
        let version = c
            .server
            .as_ref()
            .and_then(|s| s.get("rowVersion"))
            .and_then(Value::as_i64);
        if version.is_some() && version == row.row_version {
            return Ok(Explanation::Overridden { conflict: c });
        }
    }
    Ok(Explanation::Synced {
        server_id: row.server_id,
        row_version: row.row_version,
        last_sync_at,
    })
}

fn parked(conn: &rusqlite::Connection, dl: i64) -> Result<Explanation> {
    let letter = store::dead_letters(conn)?.into_iter().find(|d| d.id == dl);
    Ok(match letter {
        Some(d) => Explanation::Parked {
            dead_letter: d.id,
            code: d.code,
            message: d.message,
            field: d.field,
            tracking_id: d.tracking_id,
        },
        None => Explanation::Parked {
            dead_letter: dl,
            code: 0,
            message: String::new(),
            field: None,
            tracking_id: None,
        },
    })
}

/// The first parent (by any link) that is a pending create of another
/// user than `user`.
fn users_parent(
    conn: &rusqlite::Connection,
    def: &CollectionDef,
    row: &Row,
    user: &str,
) -> Result<Option<Explanation>> {
    let data: Value = serde_json::from_str(&row.data)?;
    for link in &def.links {
        let Ok(pcoll) = store::coll_id_of(conn, &link.collection) else {
            continue;
        };
        let Some(c) = data
            .get(&link.client_id_field)
            .and_then(Value::as_i64)
            .filter(|&c| c != 0)
        else {
            continue;
        };
        let Some(parent) = store::row_by_client_id(conn, pcoll, c)? else {
            continue;
        };
        if parent.server_id.is_some() {
            continue;
        }
        if let Some(author) = store::pending_of(conn, parent.local_id)?
            .and_then(|p| p.author)
            .filter(|a| a != user)
        {
            return Ok(Some(Explanation::WaitingForUsersParent {
                collection: link.collection.clone(),
                client_id: parent.client_id,
                user: author,
            }));
        }
    }
    Ok(None)
}

/// The first parent (by any link) whose pending change is parked.
fn parked_parent(
    conn: &rusqlite::Connection,
    def: &CollectionDef,
    row: &Row,
) -> Result<Option<Explanation>> {
    let data: Value = serde_json::from_str(&row.data)?;
    for link in &def.links {
        let Ok(pcoll) = store::coll_id_of(conn, &link.collection) else {
            continue;
        };
        let by_client = data
            .get(&link.client_id_field)
            .and_then(Value::as_i64)
            .filter(|&c| c != 0);
        let by_server = data.get(&link.id_field).and_then(Value::as_i64);
        let parent = match (by_client, by_server) {
            (Some(c), _) => store::row_by_client_id(conn, pcoll, c)?,
            (None, Some(s)) => store::row_by_server_id(conn, pcoll, s)?,
            (None, None) => None,
        };
        let Some(parent) = parent else { continue };
        if let Some(dl) = store::pending_of(conn, parent.local_id)?.and_then(|p| p.parked) {
            return Ok(Some(Explanation::WaitingForParent {
                collection: link.collection.clone(),
                server_id: parent.server_id,
                client_id: parent.client_id,
                dead_letter: dl,
            }));
        }
    }
    Ok(None)
}
