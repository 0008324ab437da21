//! The baselines: what plain rusqlite does with the same work and none of the
//! engine's bookkeeping. `apply_pages` applies recorded pull pages, of either
//! dialect, as a lean client would (serde scan of the id fields, one prepared
//! upsert per record into a table with the engine's indexes, one transaction
//! per page; records stored as they came, with no renaming);
//! `Writes` inserts a row plus an outbox row per transaction. Both use the
//! engine's pragmas (WAL, synchronous=NORMAL, same cache size).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::transports::Recording;

/// The engine's pragmas.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    Ok(conn)
}

/// The record table with the engine's indexes, plus an outbox and a
/// checkpoint table (same DDL as the engine's schema for these parts).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rs_collections (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    checkpoint INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rs_records (
    local_id INTEGER PRIMARY KEY, coll INTEGER NOT NULL, server_id INTEGER, client_id INTEGER,
    parent_client_id INTEGER, row_version INTEGER, deleted INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS rs_records_server ON rs_records(coll, server_id) WHERE server_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS rs_records_client ON rs_records(coll, client_id) WHERE client_id IS NOT NULL AND client_id <> 0;
CREATE INDEX IF NOT EXISTS rs_records_parent ON rs_records(coll, parent_client_id) WHERE parent_client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS rs_outbox (local_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
    group_id INTEGER NOT NULL, op TEXT NOT NULL, counter INTEGER NOT NULL, sent_counter INTEGER,
    base TEXT, parked INTEGER, changed_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rs_outbox_seq ON rs_outbox(seq);
";

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    data: HashMap<&'a str, Entry<'a>>,
    /// The mahak dialect's `Data`.
    #[serde(borrow, default, rename = "Data")]
    mahak: Option<MahakData<'a>>,
}

#[derive(Deserialize)]
struct MahakData<'a> {
    #[serde(borrow, rename = "Objects")]
    objects: HashMap<&'a str, Option<Vec<&'a RawValue>>>,
}

/// A mahak record's bookkeeping: `<Entity>Id` is its id and
/// `<Entity>ClientId` its client id, for the entity the page's key names
/// (`Products`: `ProductId`; `People`: `PersonId`). Keys come in any order
/// (the reference server sorts them).
struct MahakRec {
    id: i64,
    client_id: Option<i64>,
    row_version: i64,
    deleted: bool,
}

/// The id and client-id keys of the records under a page key.
fn mahak_id_keys(entity: &str) -> (String, String) {
    let one = if let Some(stem) = entity.strip_suffix("People") {
        format!("{stem}Person")
    } else if let Some(stem) = entity.strip_suffix("ies") {
        format!("{stem}y")
    } else {
        entity.strip_suffix('s').unwrap_or(entity).to_string()
    };
    (format!("{one}Id"), format!("{one}ClientId"))
}

/// Reads a [`MahakRec`] with the entity's id keys.
struct MahakSeed<'k>(&'k str, &'k str);

impl<'de> serde::de::DeserializeSeed<'de> for MahakSeed<'_> {
    type Value = MahakRec;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<MahakRec, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for MahakSeed<'_> {
    type Value = MahakRec;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<MahakRec, A::Error> {
        let (mut id, mut client_id, mut rv, mut deleted) = (None, None, 0, false);
        while let Some(k) = m.next_key::<Cow<'de, str>>()? {
            if k == "RowVersion" {
                rv = m.next_value()?;
            } else if k == "Deleted" {
                deleted = m.next_value()?;
            } else if k == self.0 {
                id = m.next_value()?;
            } else if k == self.1 {
                client_id = m.next_value()?;
            } else {
                m.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(MahakRec {
            id: id.unwrap_or_default(),
            client_id,
            row_version: rv,
            deleted,
        })
    }
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow, default)]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Rec {
    #[serde(alias = "productId", alias = "personId")]
    id: i64,
    #[serde(default, alias = "productClientId", alias = "personClientId")]
    client_id: Option<i64>,
    #[serde(rename = "rowVersion")]
    row_version: i64,
    #[serde(default)]
    deleted: bool,
}

/// One collection of a parsed page: its name, its records (id, client id,
/// row version, deleted, JSON text borrowed from the page) and the
/// checkpoint it moves to.
type ParsedEntry<'a> = (
    Cow<'a, str>,
    Vec<(i64, Option<i64>, i64, bool, &'a str)>,
    i64,
);

/// Parses one page as a plain client would (serde, borrowing the text),
/// skipping the records at or below the checkpoints (the real server's
/// inclusive bound), and moves `checkpoints` on.
fn parse_page<'a>(
    body: &'a [u8],
    checkpoints: &mut HashMap<String, i64>,
) -> Result<Vec<ParsedEntry<'a>>, String> {
    let env: Envelope<'a> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mahak_page = env.mahak.is_some();
    let entries: Vec<(&str, Vec<&RawValue>)> = match env.mahak {
        Some(m) => m
            .objects
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
        None => env.data.into_iter().map(|(k, e)| (k, e.records)).collect(),
    };
    let mut out = Vec::with_capacity(entries.len());
    for (entity, records) in entries {
        // The real server names its entities in PascalCase; the replica's
        // collections are the same names in camelCase (`Products` is
        // `products`), and an incremental upsert must find their rows.
        let name: Cow<'a, str> = match entity.chars().next() {
            Some(c) if mahak_page && c.is_ascii_uppercase() => {
                Cow::Owned(format!("{}{}", c.to_ascii_lowercase(), &entity[1..]))
            }
            _ => Cow::Borrowed(entity),
        };
        let (id_key, client_key) = mahak_id_keys(entity);
        let since = checkpoints.get(&*name).copied().unwrap_or(0);
        let mut max_rv = since;
        let mut rows = Vec::with_capacity(records.len());
        for raw in records {
            let r = if mahak_page {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                let r = serde::de::DeserializeSeed::deserialize(
                    MahakSeed(&id_key, &client_key),
                    &mut de,
                )
                .map_err(|e| e.to_string())?;
                Rec {
                    id: r.id,
                    client_id: r.client_id,
                    row_version: r.row_version,
                    deleted: r.deleted,
                }
            } else {
                serde_json::from_str(raw.get()).map_err(|e| e.to_string())?
            };
            if mahak_page && since > 0 && r.row_version <= since {
                continue;
            }
            max_rv = max_rv.max(r.row_version);
            rows.push((r.id, r.client_id, r.row_version, r.deleted, raw.get()));
        }
        checkpoints.insert(name.to_string(), max_rv);
        out.push((name, rows, max_rv));
    }
    Ok(out)
}

/// Writes one parsed page in one transaction with prepared statements: an
/// upsert per record and the checkpoints.
fn write_page(conn: &mut Connection, page: &[ParsedEntry<'_>]) -> Result<u64, String> {
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut n = 0u64;
    {
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO rs_records(coll, server_id, client_id, parent_client_id, row_version, deleted, data)
                 VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6)
                 ON CONFLICT(coll, server_id) WHERE server_id IS NOT NULL
                 DO UPDATE SET row_version = excluded.row_version, deleted = excluded.deleted,
                               data = excluded.data",
            )
            .map_err(|e| e.to_string())?;
        let mut cp = tx
            .prepare_cached(
                "INSERT INTO rs_collections(name, checkpoint) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET checkpoint = max(checkpoint, excluded.checkpoint)",
            )
            .map_err(|e| e.to_string())?;
        for (name, rows, max_rv) in page {
            tx.execute(
                "INSERT OR IGNORE INTO rs_collections(name) VALUES (?1)",
                [name],
            )
            .map_err(|e| e.to_string())?;
            let coll: i64 = tx
                .query_row(
                    "SELECT id FROM rs_collections WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .map_err(|e| e.to_string())?;
            for (id, client_id, rv, deleted, data) in rows {
                upsert
                    .execute(params![coll, id, client_id, rv, deleted, data])
                    .map_err(|e| e.to_string())?;
                n += 1;
            }
            cp.execute(params![name, max_rv])
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(n)
}

/// The naive client: each recorded page parsed, then upserted, one after
/// the other on one thread. Returns the records applied.
pub fn apply_pages(conn: &mut Connection, rec: &Recording) -> Result<u64, String> {
    conn.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
    let mut n = 0u64;
    let mut checkpoints: HashMap<String, i64> = HashMap::new();
    for page in &rec.pages {
        let parsed = parse_page(&page.body, &mut checkpoints)?;
        n += write_page(conn, &parsed)?;
    }
    Ok(n)
}

/// The physical limit: the same prepared upserts of records parsed
/// beforehand (not timed). Returns the records applied and the seconds the
/// writes took.
pub fn upsert_only(conn: &mut Connection, rec: &Recording) -> Result<(u64, f64), String> {
    conn.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
    let mut checkpoints: HashMap<String, i64> = HashMap::new();
    let mut parsed = Vec::with_capacity(rec.pages.len());
    for page in &rec.pages {
        parsed.push(parse_page(&page.body, &mut checkpoints)?);
    }
    let t = std::time::Instant::now();
    let mut n = 0u64;
    for page in &parsed {
        n += write_page(conn, page)?;
    }
    Ok((n, t.elapsed().as_secs_f64()))
}

/// Plain local writes: `rows` records plus as many outbox rows per
/// transaction.
pub struct Writes {
    conn: Connection,
    seq: i64,
}

impl Writes {
    /// Opens a fresh database at `path` with the schema.
    pub fn open(path: &Path) -> rusqlite::Result<Writes> {
        let conn = open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Writes { conn, seq: 0 })
    }

    /// One transaction: each record (serialized here, as the engine does)
    /// becomes a record row and an outbox row.
    pub fn write(&mut self, records: &[serde_json::Value]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO rs_records(coll, server_id, client_id, parent_client_id, row_version, deleted, data)
                 VALUES (?1, NULL, ?2, NULL, NULL, 0, ?3)",
            )?;
            let mut out = tx.prepare_cached(
                "INSERT INTO rs_outbox(local_id, seq, group_id, op, counter, sent_counter, base, parked, changed_at)
                 VALUES (?1, ?2, ?3, 'create', 1, NULL, NULL, NULL, '2026-01-01T00:00:00.000Z')",
            )?;
            let group = self.seq + 1;
            for value in records {
                let data = value.to_string();
                self.seq += 1;
                ins.execute(params![3, self.seq, data])?;
                let local = tx.last_insert_rowid();
                out.execute(params![local, self.seq, group])?;
            }
        }
        tx.commit()
    }
}
