//! SQLite storage of the server's data: every collection's records (kept as
//! the JSON text last written, with id, client id, row version and deletion
//! also in columns), the one row-version counter shared by all collections,
//! and the `(collection, clientId) -> id` idempotency map. This module owns
//! the schema and the row-level statements; it knows nothing of HTTP.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::error::ServerError;
use crate::schema::Coll;
use rowsync::CollectionDef;

/// What the store needs to know of a collection: its name and the names of
/// its id fields. Both dialects' collection types have them.
pub(crate) trait Keyed {
    fn name(&self) -> &str;
    fn id_field(&self) -> &str;
    fn client_id_field(&self) -> &str;
}

impl Keyed for CollectionDef {
    fn name(&self) -> &str {
        &self.name
    }
    fn id_field(&self) -> &str {
        &self.id_field
    }
    fn client_id_field(&self) -> &str {
        &self.client_id_field
    }
}

impl Keyed for Coll {
    fn name(&self) -> &str {
        &self.name
    }
    fn id_field(&self) -> &str {
        &self.id_field
    }
    fn client_id_field(&self) -> &str {
        &self.client_id_field
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('counter', 0);
CREATE TABLE IF NOT EXISTS records (
    collection  TEXT NOT NULL,
    id          INTEGER NOT NULL,
    client_id   INTEGER,
    row_version INTEGER NOT NULL,
    deleted     INTEGER NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS records_by_version ON records(collection, row_version);
CREATE TABLE IF NOT EXISTS client_ids (
    collection TEXT NOT NULL,
    client_id  INTEGER NOT NULL,
    id         INTEGER NOT NULL,
    PRIMARY KEY (collection, client_id)
);
";

/// One stored record.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub client_id: Option<i64>,
    pub row_version: i64,
    pub deleted: bool,
    pub body: String,
}

impl Row {
    /// The record as a JSON object (an empty object if the text is damaged).
    pub fn object(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.body) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The record as a JSON value.
    pub fn value(&self) -> Value {
        Value::Object(self.object())
    }
}

/// Opens (and creates if needed) the database: a file, or memory when `path`
/// is `None`.
pub(crate) fn open(path: Option<&Path>) -> Result<Connection, ServerError> {
    let conn = match path {
        Some(p) => {
            let c = Connection::open(p)?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c
        }
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(crate::tasks::SCHEMA)?;
    conn.execute_batch(crate::pictures::SCHEMA)?;
    Ok(conn)
}

/// The shared row-version counter.
pub(crate) fn counter(c: &Connection) -> Result<i64, ServerError> {
    let mut st = c.prepare_cached("SELECT value FROM meta WHERE key = 'counter'")?;
    Ok(st.query_row([], |r| r.get(0))?)
}

/// Stores the shared row-version counter.
pub(crate) fn set_counter(c: &Connection, value: i64) -> Result<(), ServerError> {
    let mut st = c.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'counter'")?;
    st.execute([value])?;
    Ok(())
}

/// The record `id` of `collection`.
pub(crate) fn get(c: &Connection, collection: &str, id: i64) -> Result<Option<Row>, ServerError> {
    let mut st = c.prepare_cached(
        "SELECT client_id, row_version, deleted, body FROM records
         WHERE collection = ?1 AND id = ?2",
    )?;
    Ok(st
        .query_row(params![collection, id], |r| {
            Ok(Row {
                client_id: r.get(0)?,
                row_version: r.get(1)?,
                deleted: r.get(2)?,
                body: r.get(3)?,
            })
        })
        .optional()?)
}

/// The server id known for `client_id` in `collection`.
pub(crate) fn id_for_client(
    c: &Connection,
    collection: &str,
    client_id: i64,
) -> Result<Option<i64>, ServerError> {
    let mut st =
        c.prepare_cached("SELECT id FROM client_ids WHERE collection = ?1 AND client_id = ?2")?;
    Ok(st
        .query_row(params![collection, client_id], |r| r.get(0))
        .optional()?)
}

/// Records `client_id -> id` in the idempotency map.
pub(crate) fn map_client(
    c: &Connection,
    collection: &str,
    client_id: i64,
    id: i64,
) -> Result<(), ServerError> {
    let mut st = c.prepare_cached(
        "INSERT OR IGNORE INTO client_ids(collection, client_id, id) VALUES (?1, ?2, ?3)",
    )?;
    st.execute(params![collection, client_id, id])?;
    Ok(())
}

/// The next free server id of `collection`.
pub(crate) fn next_id(c: &Connection, collection: &str) -> Result<i64, ServerError> {
    let mut st =
        c.prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM records WHERE collection = ?1")?;
    Ok(st.query_row([collection], |r| r.get(0))?)
}

/// Number of records of `collection`, deleted ones included.
pub(crate) fn count(c: &Connection, collection: &str) -> Result<usize, ServerError> {
    let mut st = c.prepare_cached("SELECT COUNT(*) FROM records WHERE collection = ?1")?;
    let n: i64 = st.query_row([collection], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The ids of the records of `collection` not deleted, ascending.
pub(crate) fn live_ids(c: &Connection, collection: &str) -> Result<Vec<i64>, ServerError> {
    let mut st = c.prepare_cached(
        "SELECT id FROM records WHERE collection = ?1 AND deleted = 0 ORDER BY id",
    )?;
    let rows = st.query_map([collection], |r| r.get::<_, i64>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every record of `collection`, deleted ones included, by id.
pub(crate) fn dump(c: &Connection, collection: &str) -> Result<Vec<Value>, ServerError> {
    let mut st = c.prepare_cached("SELECT body FROM records WHERE collection = ?1 ORDER BY id")?;
    let rows = st.query_map([collection], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for body in rows {
        out.push(serde_json::from_str(&body?).unwrap_or(Value::Null));
    }
    Ok(out)
}

/// Writes a record: sets its id, client id (when given), `rowVersion` and
/// `deleted` (false when absent) fields, and stores it. Returns the stored
/// object.
pub(crate) fn write(
    c: &Connection,
    def: &(impl Keyed + ?Sized),
    id: i64,
    client_id: Option<i64>,
    row_version: i64,
    mut obj: Map<String, Value>,
) -> Result<Map<String, Value>, ServerError> {
    obj.insert(def.id_field().to_string(), Value::from(id));
    match client_id {
        _ if def.client_id_field().is_empty() => {}
        Some(cid) => {
            obj.insert(def.client_id_field().to_string(), Value::from(cid));
        }
        None => {
            obj.entry(def.client_id_field().to_string())
                .or_insert(Value::Null);
        }
    }
    obj.insert("rowVersion".to_string(), Value::from(row_version));
    let deleted = match obj.get("deleted") {
        Some(Value::Bool(b)) => *b,
        _ => false,
    };
    obj.insert("deleted".to_string(), Value::Bool(deleted));
    let body = serde_json::to_string(&obj)?;
    let mut st = c.prepare_cached(
        "INSERT INTO records(collection, id, client_id, row_version, deleted, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(collection, id) DO UPDATE SET client_id = excluded.client_id,
             row_version = excluded.row_version, deleted = excluded.deleted,
             body = excluded.body",
    )?;
    st.execute(params![
        def.name(),
        id,
        client_id,
        row_version,
        deleted,
        body
    ])?;
    if let Some(cid) = client_id {
        map_client(c, def.name(), cid, id)?;
    }
    Ok(obj)
}

/// Outcome of reading one page of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub count: usize,
    pub max_row_version: Option<i64>,
    pub has_more: bool,
}

/// Appends to `out` the JSON texts of the records of `collection` with
/// `rowVersion > after`, ascending, at most `limit`, separated by commas (no
/// brackets). The stored texts are spliced in as they are.
pub(crate) fn read_page(
    c: &Connection,
    collection: &str,
    after: i64,
    limit: Option<usize>,
    out: &mut String,
) -> Result<Page, ServerError> {
    let fetch = limit
        .map(|l| i64::try_from(l).unwrap_or(i64::MAX - 1) + 1)
        .unwrap_or(-1);
    let mut st = c.prepare_cached(
        "SELECT row_version, body FROM records
         WHERE collection = ?1 AND row_version > ?2
         ORDER BY row_version LIMIT ?3",
    )?;
    let mut rows = st.query(params![collection, after, fetch])?;
    let mut page = Page {
        count: 0,
        max_row_version: None,
        has_more: false,
    };
    while let Some(row) = rows.next()? {
        if limit.is_some_and(|l| page.count >= l) {
            page.has_more = true;
            break;
        }
        let rv: i64 = row.get(0)?;
        let body = row.get_ref(1)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?;
        if page.count > 0 {
            out.push(',');
        }
        out.push_str(body);
        page.count += 1;
        page.max_row_version = Some(rv);
    }
    Ok(page)
}

/// Inserts a new record as is (bulk seeding): no upsert, no client id map.
pub(crate) fn insert_raw(
    c: &Connection,
    collection: &str,
    id: i64,
    row_version: i64,
    body: &str,
) -> Result<(), ServerError> {
    let mut st = c.prepare_cached(
        "INSERT INTO records(collection, id, client_id, row_version, deleted, body)
         VALUES (?1, ?2, NULL, ?3, 0, ?4)",
    )?;
    st.execute(params![collection, id, row_version, body])?;
    Ok(())
}

/// Inserts a new record as is (bulk seeding) that another client made: its
/// `client_id` is stored and mapped, as a save of it would have.
pub(crate) fn insert_raw_from_client(
    c: &Connection,
    collection: &str,
    (id, client_id): (i64, i64),
    row_version: i64,
    body: &str,
) -> Result<(), ServerError> {
    let mut st = c.prepare_cached(
        "INSERT INTO records(collection, id, client_id, row_version, deleted, body)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)",
    )?;
    st.execute(params![collection, id, client_id, row_version, body])?;
    map_client(c, collection, client_id, id)
}
