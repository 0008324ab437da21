//! Records: the replica's rows, as a pull, a push confirmation or a local
//! write leaves them, and each collection's pull checkpoint, which never
//! moves backwards (DESIGN.md invariant 2).

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::db::Tx;
use crate::error::{Error, Result};

/// A record row as stored.
#[derive(Debug, Clone)]
pub struct Row {
    /// Local primary key.
    pub local_id: i64,
    /// Server id, once known.
    pub server_id: Option<i64>,
    /// Client id (null or 0 for records created elsewhere without one).
    pub client_id: Option<i64>,
    /// Last server rowVersion seen.
    pub row_version: Option<i64>,
    /// Tombstone.
    pub deleted: bool,
    /// The record's JSON text.
    pub data: String,
}

impl Row {
    /// The record as a JSON object.
    pub fn object(&self) -> Result<Map<String, Value>> {
        match serde_json::from_str(&self.data)? {
            Value::Object(m) => Ok(m),
            _ => Err(Error::Database(
                "a stored record is not a JSON object".into(),
            )),
        }
    }
}

/// A record row to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    /// Collection id.
    pub coll: i64,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id, if any.
    pub client_id: Option<i64>,
    /// The parent's client id, for children.
    pub parent_client_id: Option<i64>,
    /// Server rowVersion, if known.
    pub row_version: Option<i64>,
    /// Tombstone.
    pub deleted: bool,
    /// The record's JSON text.
    pub data: &'a str,
}

impl NewRow<'_> {
    pub(crate) fn params(&self) -> impl rusqlite::Params + '_ {
        (
            self.coll,
            self.server_id,
            self.client_id,
            self.parent_client_id,
            self.row_version,
            self.deleted,
            self.data,
        )
    }
}

const ROW_COLUMNS: &str = "local_id, server_id, client_id, row_version, deleted, data";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        local_id: r.get(0)?,
        server_id: r.get(1)?,
        client_id: r.get(2)?,
        row_version: r.get(3)?,
        deleted: r.get(4)?,
        data: r.get(5)?,
    })
}

impl Tx<'_> {
    /// Inserts a new record unless its client id is taken (`None` then):
    /// the unique index answers, without a lookup first. The pull's
    /// insert-unless-present statement.
    pub fn insert_new_record(&self, row: &NewRow<'_>) -> Result<Option<i64>> {
        let inserted = self.insert_pulled_statement()?.execute(row.params())? == 1;
        Ok(inserted.then(|| self.tx.last_insert_rowid()))
    }

    /// The statement that inserts a pulled record unless a record with its
    /// server id or client id already exists (one row changed when
    /// inserted). Prepared once per page: this is the first sync's hot path.
    pub fn insert_pulled_statement(&self) -> Result<rusqlite::CachedStatement<'_>> {
        Ok(self.tx.prepare_cached(
            "INSERT INTO rs_records(coll, server_id, client_id, parent_client_id, row_version, deleted, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )?)
    }

    /// Rewrites the record of `coll` with server id `sid` with a pulled
    /// version when that is all there is to do: its version is older than
    /// `row_version` (or unknown) and no local change is pending over it.
    /// True when it did; otherwise nothing was written and the caller looks
    /// closer. One statement where a probe and an update took two.
    pub fn update_pulled_plain(
        &self,
        coll: i64,
        sid: i64,
        row_version: i64,
        deleted: bool,
        data: &str,
    ) -> Result<bool> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE rs_records SET row_version = ?3, deleted = ?4, data = ?5
                 WHERE coll = ?1 AND server_id = ?2
                   AND (row_version IS NULL OR row_version < ?3)
                   AND NOT EXISTS (SELECT 1 FROM rs_outbox o WHERE o.local_id = rs_records.local_id)",
            )?
            .execute(params![coll, sid, row_version, deleted, data])?;
        Ok(changed == 1)
    }

    /// Rewrites a pulled record whose server id is unchanged (so its index
    /// entry is not rewritten).
    pub fn update_pulled(
        &self,
        local_id: i64,
        row_version: i64,
        deleted: bool,
        data: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE rs_records SET row_version = ?2, deleted = ?3, data = ?4 WHERE local_id = ?1")?
            .execute(params![local_id, row_version, deleted, data])?;
        Ok(())
    }

    /// Rewrites a record row.
    pub fn update_record(
        &self,
        local_id: i64,
        server_id: Option<i64>,
        row_version: Option<i64>,
        deleted: bool,
        data: &str,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_records SET server_id = ?2, row_version = ?3, deleted = ?4, data = ?5 WHERE local_id = ?1",
        )?;
        stmt.execute(params![local_id, server_id, row_version, deleted, data])?;
        Ok(())
    }

    /// Stores `fields` the server holds on record `local_id` (an upload's
    /// answer: its file's URL and hash) as the server's: in its data, and
    /// in the base of a change pending over it, so that no pending change
    /// is made and a merge sees them as the server's, not as a local edit.
    /// False when the record is gone.
    pub fn store_server_fields(&self, local_id: i64, fields: &Map<String, Value>) -> Result<bool> {
        let Some(row) = row_by_local_id(self, local_id)? else {
            return Ok(false);
        };
        let mut data = row.object()?;
        data.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.update_record_data(local_id, row.deleted, &serde_json::to_string(&data)?)?;
        let base: Option<Option<String>> = self
            .tx
            .prepare_cached("SELECT base FROM rs_outbox WHERE local_id = ?1")?
            .query_row([local_id], |r| r.get(0))
            .optional()?;
        if let Some(Some(base)) = base {
            if let Ok(Value::Object(mut b)) = serde_json::from_str::<Value>(&base) {
                b.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                self.tx
                    .prepare_cached("UPDATE rs_outbox SET base = ?2 WHERE local_id = ?1")?
                    .execute(params![local_id, serde_json::to_string(&b)?])?;
            }
        }
        Ok(true)
    }

    /// Rewrites only a record's data and tombstone flag (a local write).
    pub fn update_record_data(&self, local_id: i64, deleted: bool, data: &str) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE rs_records SET deleted = ?2, data = ?3 WHERE local_id = ?1")?;
        stmt.execute(params![local_id, deleted, data])?;
        Ok(())
    }

    /// Removes a record row and its pending change (a create that never
    /// reached the server, then deleted or discarded).
    pub fn remove_record(&self, local_id: i64) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM rs_outbox WHERE local_id = ?1")?
            .execute([local_id])?;
        self.tx
            .prepare_cached("DELETE FROM rs_records WHERE local_id = ?1")?
            .execute([local_id])?;
        Ok(())
    }

    /// Sets the parent's server id on children that point at it only by its
    /// client id (after the parent's create was confirmed).
    pub fn link_children(
        &self,
        child_coll: i64,
        parent_field: &str,
        parent_client_id: i64,
        parent_id: i64,
    ) -> Result<()> {
        let path = format!("$.\"{parent_field}\"");
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_records SET data = json_set(data, ?3, ?4)
             WHERE coll = ?1 AND parent_client_id = ?2 AND json_extract(data, ?3) IS NULL",
        )?;
        stmt.execute(params![child_coll, parent_client_id, path, parent_id])?;
        Ok(())
    }

    /// Local children of a parent (by the parent's client id) that are pending
    /// creates: they cannot exist without it.
    pub fn orphaned_creates(&self, child_coll: i64, parent_client_id: i64) -> Result<Vec<i64>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT r.local_id FROM rs_records r JOIN rs_outbox o ON o.local_id = r.local_id
             WHERE r.coll = ?1 AND r.parent_client_id = ?2 AND r.server_id IS NULL AND o.op = 'create'",
        )?;
        let rows = stmt.query_map(params![child_coll, parent_client_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves a collection's checkpoint forward (never backwards).
    pub fn advance_checkpoint(&self, coll: i64, to: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE rs_collections SET checkpoint = MAX(checkpoint, ?2) WHERE id = ?1",
            )?
            .execute(params![coll, to])?;
        Ok(())
    }

    /// Resets one collection's checkpoint to 0 (its records are pulled
    /// again from the start; data kept).
    pub fn reset_checkpoint(&self, coll: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE rs_collections SET checkpoint = 0 WHERE id = ?1",
            [coll],
        )?;
        Ok(())
    }

    /// Resets every checkpoint to 0 (forget the server's state; data kept).
    pub fn reset_checkpoints(&self) -> Result<()> {
        self.tx
            .execute("UPDATE rs_collections SET checkpoint = 0", [])?;
        Ok(())
    }
}

/// The record of `coll` with server id `id`.
pub fn row_by_server_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE coll = ?1 AND server_id = ?2"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_row).optional()?)
}

/// What a pull needs to know of a local record before touching it.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Local id.
    pub local_id: i64,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Last server rowVersion seen.
    pub row_version: Option<i64>,
    /// It has a pending change (parked or not).
    pub pending: bool,
}

const PROBE_SQL: &str = "SELECT r.local_id, r.server_id, r.row_version,
        EXISTS (SELECT 1 FROM rs_outbox o WHERE o.local_id = r.local_id)
    FROM rs_records r";

fn read_probe(r: &rusqlite::Row<'_>) -> rusqlite::Result<Probe> {
    Ok(Probe {
        local_id: r.get(0)?,
        server_id: r.get(1)?,
        row_version: r.get(2)?,
        pending: r.get(3)?,
    })
}

/// Probes the record of `coll` with server id `id`.
pub fn probe_by_server_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Probe>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{PROBE_SQL} WHERE r.coll = ?1 AND r.server_id = ?2"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_probe).optional()?)
}

/// Probes the record of `coll` with client id `id` (never matches 0).
pub fn probe_by_client_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Probe>> {
    if id == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "{PROBE_SQL} WHERE r.coll = ?1 AND r.client_id = ?2 AND r.client_id <> 0"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_probe).optional()?)
}

/// The record of `coll` with client id `id` (never matches 0).
pub fn row_by_client_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Row>> {
    if id == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE coll = ?1 AND client_id = ?2 AND client_id <> 0"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_row).optional()?)
}

/// The record by local id.
pub fn row_by_local_id(conn: &Connection, local_id: i64) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE local_id = ?1"
    ))?;
    Ok(stmt.query_row([local_id], read_row).optional()?)
}

/// A page of a collection in local order.
pub fn list_rows(
    conn: &Connection,
    coll: i64,
    include_deleted: bool,
    after: i64,
    offset: u64,
    limit: u64,
) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE coll = ?1 AND local_id > ?2 AND (?3 OR deleted = 0)
         ORDER BY local_id LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = stmt.query_map(
        params![
            coll,
            after,
            include_deleted,
            limit.min(i64::MAX as u64) as i64,
            offset.min(i64::MAX as u64) as i64
        ],
        read_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The value a field of a query must equal, as the query's SQL compares it.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// The field is `null` or absent.
    Null,
    /// A JSON boolean.
    Bool(bool),
    /// A JSON number that fits an `i64`.
    Int(i64),
    /// Any other JSON number.
    Real(f64),
    /// A JSON string.
    Text(String),
}

/// The live records of a collection whose fields equal `filters` (each a
/// JSON path, `$."field"`, and its value), ordered by the field at
/// `order`'s path (descending when its flag is set; `null` and absent
/// first when ascending, then numbers, then text), then in local order,
/// at most `limit`: the data of each. A type is compared with its own kind
/// only (the number 1 never matches `true` nor `"1"`). No index covers a
/// record's fields: the collection is scanned.
pub fn query_rows(
    conn: &Connection,
    coll: i64,
    filters: &[(String, Match)],
    order: Option<(&str, bool)>,
    limit: u32,
) -> Result<Vec<String>> {
    use rusqlite::types::Value as Sql;
    use std::fmt::Write as _;
    let mut sql = String::from("SELECT data FROM rs_records WHERE coll = ?1 AND deleted = 0");
    let mut args: Vec<Sql> = vec![Sql::Integer(coll)];
    for (path, value) in filters {
        args.push(Sql::Text(path.clone()));
        let p = args.len();
        let (kinds, arg) = match value {
            Match::Null => {
                let _ = write!(sql, " AND json_extract(data, ?{p}) IS NULL");
                continue;
            }
            Match::Bool(b) => {
                let _ = write!(sql, " AND json_type(data, ?{p}) = '{b}'");
                continue;
            }
            Match::Int(i) => ("'integer', 'real'", Sql::Integer(*i)),
            Match::Real(r) => ("'integer', 'real'", Sql::Real(*r)),
            Match::Text(t) => ("'text'", Sql::Text(t.clone())),
        };
        args.push(arg);
        let v = args.len();
        let _ = write!(
            sql,
            " AND json_type(data, ?{p}) IN ({kinds}) AND json_extract(data, ?{p}) = ?{v}"
        );
    }
    if let Some((path, descending)) = order {
        args.push(Sql::Text(path.to_string()));
        let dir = if descending { "DESC" } else { "ASC" };
        let _ = write!(
            sql,
            " ORDER BY json_extract(data, ?{}) {dir}, local_id",
            args.len()
        );
    } else {
        sql.push_str(" ORDER BY local_id");
    }
    args.push(Sql::Integer(i64::from(limit)));
    let _ = write!(sql, " LIMIT ?{}", args.len());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Number of records in a collection.
pub fn count_rows(conn: &Connection, coll: i64, include_deleted: bool) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM rs_records WHERE coll = ?1 AND (?2 OR deleted = 0)")?
        .query_row(params![coll, include_deleted], |r| r.get(0))?;
    Ok(n as u64)
}

/// Every collection's checkpoint.
pub fn checkpoints(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT name, checkpoint FROM rs_collections ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A collection's checkpoint.
pub fn checkpoint(conn: &Connection, coll: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT checkpoint FROM rs_collections WHERE id = ?1")?
        .query_row([coll], |r| r.get(0))?)
}
