//! Pull: turning a `GetAllDataV2` answer into local state. A page is parsed
//! and validated whole before anything is written (a malformed page leaves the
//! store exactly as it was); then, in one transaction, records are upserted,
//! tombstones applied, conflicts with pending changes resolved and logged, and
//! checkpoints moved. Records may come in any order, repeated, or as echoes of
//! our own writes; a record already held at that version is a no-op.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::catalogue::{Catalogue, CollectionDef};
use crate::conflict::{self, ConflictResolver};
use crate::error::{Error, Result};
use crate::local::{ChangeOrigin, Changes};
use crate::record::{self, Meta};
use crate::report::SyncReport;
use crate::store::{self, Op, Tx};

/// One collection's part of a page, validated.
pub struct Entry<'a> {
    /// The collection.
    pub def: &'a CollectionDef,
    /// The entry's own rowVersion.
    pub row_version: Option<i64>,
    /// More records remain on the server.
    pub has_more: bool,
    /// Each record's JSON text with its bookkeeping fields.
    pub records: Vec<(&'a str, Meta)>,
}

impl Entry<'_> {
    /// The checkpoint this entry allows: the largest rowVersion it carries.
    pub fn checkpoint(&self) -> Option<i64> {
        let rec = self.records.iter().filter_map(|(_, m)| m.row_version).max();
        match (self.row_version, rec) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(rename = "rowVersion", default)]
    row_version: Option<i64>,
    #[serde(rename = "hasMore", default)]
    has_more: Option<bool>,
    #[serde(borrow, default)]
    records: Option<Vec<&'a RawValue>>,
}

/// Parses and validates a page. Collections not asked for are ignored (a
/// server may send more than asked); every record of the asked ones must be
/// an object with an integer server id and rowVersion.
pub fn parse_page<'a>(
    catalogue: &'a Catalogue,
    wanted: &[String],
    data: &'a RawValue,
    tracking_id: Option<&str>,
) -> Result<Vec<Entry<'a>>> {
    let protocol = |collection: Option<&str>, message: String| Error::Protocol {
        collection: collection.map(str::to_string),
        message,
        tracking_id: tracking_id.map(str::to_string),
    };
    if data.get().trim() == "null" {
        return Ok(Vec::new());
    }
    let map: HashMap<Cow<'a, str>, &'a RawValue> = serde_json::from_str(data.get())
        .map_err(|e| protocol(None, format!("`data` is not an object of collections: {e}")))?;
    let mut out = Vec::new();
    for def in catalogue.iter() {
        if !wanted.contains(&def.name) {
            continue;
        }
        let Some(raw) = map.get(def.name.as_str()) else {
            continue;
        };
        if raw.get().trim() == "null" {
            continue;
        }
        let entry: RawEntry<'a> = serde_json::from_str(raw.get())
            .map_err(|e| protocol(Some(&def.name), format!("bad collection entry: {e}")))?;
        let mut records = Vec::with_capacity(entry.records.as_ref().map_or(0, Vec::len));
        for (i, rec) in entry.records.unwrap_or_default().into_iter().enumerate() {
            let text = rec.get();
            let meta = record::scan(def, text)
                .map_err(|m| protocol(Some(&def.name), format!("record {i}: {m}")))?;
            if meta.server_id.is_none() {
                return Err(protocol(
                    Some(&def.name),
                    format!("record {i} has no `{}`", def.id_field),
                ));
            }
            if meta.row_version.is_none() {
                return Err(protocol(
                    Some(&def.name),
                    format!("record {i} has no `rowVersion`"),
                ));
            }
            records.push((text, meta));
        }
        out.push(Entry {
            def,
            row_version: entry.row_version,
            has_more: entry.has_more.unwrap_or(false),
            records,
        });
    }
    Ok(out)
}

/// Applies validated entries in `tx` (the caller commits).
pub fn apply(
    tx: &mut Tx<'_>,
    entries: &[Entry<'_>],
    resolvers: &HashMap<String, std::sync::Arc<dyn ConflictResolver>>,
    report: &mut SyncReport,
    changes: &mut Changes,
) -> Result<()> {
    for entry in entries {
        let def = entry.def;
        let coll = tx.coll_id(&def.name)?;
        let (mut applied, mut deleted) = (0u64, 0u64);
        let resolver = resolvers.get(&def.name).map(|r| r.as_ref());
        for (text, meta) in &entry.records {
            let (Some(sid), Some(rv)) = (meta.server_id, meta.row_version) else {
                continue;
            };
            let cid = meta.identity_client_id();
            let pcid = meta.parent_client_id.filter(|&c| c != 0);
            let new_row = store::NewRow {
                coll,
                server_id: Some(sid),
                client_id: meta.client_id,
                parent_client_id: pcid,
                row_version: Some(rv),
                deleted: meta.deleted,
                data: text,
            };
            if tx.insert_pulled_if_new(&new_row)? {
                applied += 1;
                deleted += meta.deleted as u64;
                changes.note(&def.name, Some(sid), meta.client_id, ChangeOrigin::Sync);
                continue;
            }
            let existing = match store::row_by_server_id(tx, coll, sid)? {
                Some(r) => Some(r),
                None => match cid {
                    Some(c) => store::row_by_client_id(tx, coll, c)?,
                    None => None,
                },
            };
            let Some(row) = existing else {
                // A unique-index conflict without a matching row cannot
                // happen; refuse rather than guess.
                return Err(Error::Database(format!(
                    "`{}` record {sid} could not be placed",
                    def.name
                )));
            };
            if row.row_version.is_some_and(|have| have >= rv) {
                continue;
            }
            match store::pending_of(tx, row.local_id)? {
                None => {
                    tx.update_record(row.local_id, Some(sid), Some(rv), meta.deleted, text)?;
                }
                Some(p) => {
                    let server: Map<String, Value> = match serde_json::from_str(text)? {
                        Value::Object(m) => m,
                        _ => continue,
                    };
                    resolve_conflict(tx, def, resolver, &row, &p, &server, meta.deleted, report)?;
                }
            }
            applied += 1;
            deleted += meta.deleted as u64;
            changes.note(
                &def.name,
                Some(sid),
                row.client_id.or(meta.client_id),
                ChangeOrigin::Sync,
            );
        }
        let stats = report.collection(&def.name);
        stats.pulled += entry.records.len() as u64;
        stats.applied += applied;
        stats.deleted += deleted;
        if let Some(cp) = entry.checkpoint() {
            tx.advance_checkpoint(coll, cp)?;
        }
    }
    Ok(())
}

/// Resolves a pending local change against a newer server version and
/// stores the outcome; shared by pull and by a save's 2002 answer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolve_conflict(
    tx: &mut Tx<'_>,
    def: &CollectionDef,
    resolver: Option<&dyn ConflictResolver>,
    row: &store::Row,
    pending: &store::Pending,
    server: &Map<String, Value>,
    server_deleted: bool,
    report: &mut SyncReport,
) -> Result<()> {
    let local = row.object()?;
    let base: Option<Map<String, Value>> = match &pending.base {
        Some(b) => match serde_json::from_str(b)? {
            Value::Object(m) => Some(m),
            _ => None,
        },
        None => None,
    };
    let local_deleted = row.deleted || pending.op == Op::Delete;
    let outcome = conflict::resolve(
        def,
        resolver,
        base.as_ref(),
        &local,
        local_deleted,
        server,
        server_deleted,
    );
    let sid = server
        .get(&def.id_field)
        .and_then(Value::as_i64)
        .or(row.server_id);
    let rv = server.get("rowVersion").and_then(Value::as_i64);
    let server_text = serde_json::to_string(server)?;
    let record_text = serde_json::to_string(&outcome.record)?;
    tx.update_record(row.local_id, sid, rv, outcome.deleted, &record_text)?;
    if outcome.pending {
        tx.rebase_pending(row.local_id, Op::Update, &server_text)?;
    } else {
        tx.drop_pending(row.local_id)?;
    }
    if outcome.overrode_local() {
        tx.log_conflict(
            &def.name,
            sid,
            row.client_id,
            pending.base.as_deref(),
            Some(&row.data),
            Some(&server_text),
            &outcome.fields,
            outcome.resolution,
        )?;
        report.collection(&def.name).conflicts += 1;
        report.conflicts += 1;
    }
    Ok(())
}
