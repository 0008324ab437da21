//! Applying a pull page, parsed and validated whole before anything is
//! written (a malformed page leaves the store exactly as it was): in one
//! transaction, records are upserted, tombstones applied, our own creates
//! and lost saves recognised (`confirm.rs`), conflicts with pending changes
//! resolved and logged (`resolve.rs`), and checkpoints moved. Records may
//! come in any order, repeated, or as echoes of our own writes; a record
//! already held at that version is a no-op.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::catalogue::Catalogue;
use crate::conflict::ConflictResolver;
use crate::error::{Error, Result};
use crate::listeners::{ChangeOrigin, Changes};
use crate::report::SyncReport;
use crate::store::{self, Tx};
use crate::sync::confirm::confirm_saved;
use crate::sync::resolve::resolve_conflict;

/// A validated collection entry of a pull answer.
pub use crate::api::dialect::PulledCollection as Entry;

/// Applies validated entries in `tx` (the caller commits).
///
/// A collection pulled for the first time (checkpoint 0) tries a plain
/// insert first, since nearly every record is new; a later pull tries a
/// plain update first, since most records are updates; within a page, each
/// record starts with what worked for the one before.
pub fn apply(
    tx: &Tx<'_>,
    catalogue: &Catalogue,
    entries: &[Entry<'_>],
    resolvers: &HashMap<String, std::sync::Arc<dyn ConflictResolver>>,
    report: &mut SyncReport,
    changes: &mut Changes,
) -> Result<()> {
    let mut insert = tx.insert_pulled_statement()?;
    for entry in entries {
        let def = entry.def;
        let coll = tx.coll_id(&def.name)?;
        let (mut applied, mut deleted) = (0u64, 0u64);
        let resolver = resolvers.get(&def.name).map(|r| r.as_ref());
        // What is tried first follows what the last record was: new records
        // come in runs (a first sync is nothing but), updates too (a later
        // pull mostly). A wrong guess costs one statement that changes
        // nothing.
        let mut expect_new = store::checkpoint(tx, coll)? == 0;
        for (text, meta) in &entry.records {
            let text: &str = text;
            let (Some(sid), Some(rv)) = (meta.server_id, meta.row_version) else {
                continue;
            };
            let new_row = store::NewRow {
                coll,
                server_id: Some(sid),
                client_id: meta.client_id,
                parent_client_id: meta.parent_client_id.filter(|&c| c != 0),
                row_version: Some(rv),
                deleted: meta.deleted,
                data: text,
            };
            let inserted = expect_new && insert.execute(new_row.params())? == 1;
            // A plain update of a record no local change touches is one
            // statement; anything else (not there yet, same or newer
            // version, pending) is probed.
            let updated = !inserted && tx.update_pulled_plain(coll, sid, rv, meta.deleted, text)?;
            let probe = if inserted || updated {
                None
            } else {
                match store::probe_by_server_id(tx, coll, sid)? {
                    Some(p) => Some(p),
                    None => match meta.identity_client_id() {
                        Some(c) => store::probe_by_client_id(tx, coll, c)?,
                        None => None,
                    },
                }
            };
            expect_new = inserted || (!updated && probe.is_none());
            match probe {
                None if inserted || updated => {}
                None => {
                    if insert.execute(new_row.params())? != 1 {
                        return Err(Error::Database(format!(
                            "`{}` record {sid} could not be placed",
                            def.name
                        )));
                    }
                }
                Some(p) => {
                    if p.row_version.is_some_and(|have| have > rv) && !meta.versionless {
                        continue;
                    }
                    if p.row_version == Some(rv) || (meta.versionless && p.server_id == Some(sid)) {
                        // A record without a version (mahak) is the server's
                        // copy as it is now: taken like a repeat, over an
                        // unchanged local one, keeping the version the
                        // replica knew.
                        let rv = if meta.versionless {
                            p.row_version.unwrap_or(rv)
                        } else {
                            rv
                        };
                        // The same version again: a repeat, or the echo of
                        // our own save. The server's copy may carry what it
                        // added on saving (dates, hashes, totals): take it,
                        // unless a local edit is pending over it.
                        if !p.pending {
                            if let Some(row) = store::row_by_local_id(tx, p.local_id)? {
                                if row.data != text {
                                    tx.update_pulled(p.local_id, rv, meta.deleted, text)?;
                                }
                            }
                        }
                        continue;
                    }
                    if p.pending && p.server_id.is_none() {
                        // The server holds our own create (its answer was
                        // lost, or this pull reconciles it): confirm it by
                        // client id instead of treating it as a conflict.
                        let sent = store::pending_of(tx, p.local_id)?.and_then(|x| x.sent_counter);
                        confirm_saved(
                            tx,
                            catalogue,
                            def,
                            p.local_id,
                            sent,
                            sid,
                            Some(rv),
                            Some((text, meta.deleted)),
                            || Ok(text.to_string()),
                            report,
                        )?;
                    } else if !p.pending {
                        if p.server_id == Some(sid) {
                            tx.update_pulled(p.local_id, rv, meta.deleted, text)?;
                        } else {
                            tx.update_record(p.local_id, Some(sid), Some(rv), meta.deleted, text)?;
                        }
                    } else {
                        let server: Map<String, Value> = match serde_json::from_str(text)? {
                            Value::Object(m) => m,
                            _ => continue,
                        };
                        let (Some(row), Some(pending)) = (
                            store::row_by_local_id(tx, p.local_id)?,
                            store::pending_of(tx, p.local_id)?,
                        ) else {
                            continue;
                        };
                        if let Some(sent) = echo_of_sent(&pending, &server, meta.deleted) {
                            // Our own save, applied though its answer was
                            // lost: a confirmation, not a conflict.
                            settle_echo(tx, &row, &pending, &sent, server, text, rv, meta.deleted)?;
                        } else {
                            resolve_conflict(
                                tx,
                                def,
                                resolver,
                                &row,
                                &pending,
                                &server,
                                meta.deleted,
                                report,
                            )?;
                        }
                    }
                }
            }
            applied += 1;
            deleted += meta.deleted as u64;
            changes.note(&def.name, Some(sid), meta.client_id, ChangeOrigin::Sync);
        }
        if !entry.records.is_empty() {
            let stats = report.collection(&def.name);
            stats.pulled += entry.records.len() as u64;
            stats.applied += applied;
            stats.deleted += deleted;
        }
        if let Some(cp) = entry.checkpoint() {
            tx.advance_checkpoint(coll, cp)?;
        }
    }
    Ok(())
}

/// The record as we last sent it, when `server` is that send applied: the
/// change went out (its answer never came back), and the server holds every
/// field it changed, as sent (a delete: the record deleted). A change that
/// changed nothing is never taken for an echo. A local edit or delete made
/// since the send stays pending over it.
fn echo_of_sent(
    pending: &store::Pending,
    server: &Map<String, Value>,
    server_deleted: bool,
) -> Option<Map<String, Value>> {
    pending.sent_counter?;
    let sent: Map<String, Value> = match serde_json::from_str(pending.sent_data.as_deref()?) {
        Ok(Value::Object(m)) => m,
        _ => return None,
    };
    // Judged by what was sent: the change may have become a delete since.
    let sent_delete = sent.get("deleted") == Some(&Value::Bool(true));
    if sent_delete || server_deleted {
        return (sent_delete && server_deleted).then_some(sent);
    }
    let base: Option<Map<String, Value>> = pending
        .base
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    let mut changed = 0;
    for (k, v) in &sent {
        if k == "rowVersion" || base.as_ref().and_then(|b| b.get(k)) == Some(v) {
            continue;
        }
        changed += 1;
        let same = match (v, server.get(k)) {
            // The real server pads some text with spaces.
            (Value::String(a), Some(Value::String(b))) => a.trim_end() == b.trim_end(),
            (a, Some(b)) => a == b,
            (_, None) => false,
        };
        if !same {
            return None;
        }
    }
    (changed > 0).then_some(sent)
}

/// Settles a pending change whose last send the server shows applied: the
/// record becomes the server's version, with the local edits made since
/// the send on top, still pending over the new base; with none, the change
/// is confirmed.
#[allow(clippy::too_many_arguments)]
fn settle_echo(
    tx: &Tx<'_>,
    row: &store::Row,
    pending: &store::Pending,
    sent: &Map<String, Value>,
    server: Map<String, Value>,
    server_text: &str,
    rv: i64,
    deleted: bool,
) -> Result<()> {
    let sid = row.server_id;
    if pending.sent_counter == Some(pending.counter) {
        tx.update_record(row.local_id, sid, Some(rv), deleted, server_text)?;
        return tx.drop_pending(row.local_id);
    }
    let mut merged = server;
    for (k, v) in row.object()? {
        if sent.get(&k) != Some(&v) {
            merged.insert(k, v);
        }
    }
    let text = serde_json::to_string(&merged)?;
    tx.update_record(row.local_id, sid, Some(rv), row.deleted, &text)?;
    tx.confirm_overtaken(row.local_id, server_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::dialect::{parse_pull_sorted, Dialect};
    use crate::record::Op;
    use crate::store::Store;
    use serde_json::value::RawValue;

    fn parse_page<'a>(
        cat: &'a Catalogue,
        wanted: &'a [String],
        data: &'a RawValue,
        tracking_id: Option<&str>,
    ) -> Result<Vec<Entry<'a>>> {
        parse_pull_sorted(
            Dialect::Documented.codec(),
            cat,
            wanted,
            data.get(),
            tracking_id,
        )
    }

    const PAGE: &str = r#"{"products":{"rowVersion":12,"hasMore":false,"records":[
        {"productId":1,"productClientId":null,"name":"Tea","price":5,"rowVersion":10,"deleted":false},
        {"productId":2,"productClientId":7,"name":"Rice \"long\"","tags":["a",{"b":1}],"rowVersion":11,"deleted":true}]},
        "orderDetails":{"rowVersion":12,"records":[
        {"orderDetailId":3,"orderId":9,"orderClientId":null,"quantity":2.5,"rowVersion":12}]}}"#;

    /// A store for `cat` in memory.
    fn memory_store(cat: &Catalogue) -> Result<Store> {
        Store::open(
            std::path::Path::new(":memory:"),
            cat.iter().map(|c| c.name.as_str()),
        )
    }

    /// Applies `entries` to `store` in one committed transaction.
    fn apply_entries(
        store: &mut Store,
        cat: &Catalogue,
        entries: &[Entry<'_>],
    ) -> Result<SyncReport> {
        let tx = store.begin()?;
        let mut report = SyncReport::default();
        apply(
            &tx,
            cat,
            entries,
            &HashMap::new(),
            &mut report,
            &mut Changes::default(),
        )?;
        tx.commit()?;
        Ok(report)
    }

    /// Applies `entries` to a fresh in-memory store and commits.
    fn apply_fresh(cat: &Catalogue, entries: &[Entry<'_>]) -> Result<SyncReport> {
        apply_entries(&mut memory_store(cat)?, cat, entries)
    }

    fn wanted(cat: &Catalogue) -> Vec<String> {
        cat.iter().map(|c| c.name.clone()).collect()
    }

    fn products_page(records: &[(i64, i64, &str)]) -> String {
        let list: Vec<String> = records
            .iter()
            .map(|(id, rv, name)| {
                format!(r#"{{"productId":{id},"productClientId":null,"name":"{name}","rowVersion":{rv},"deleted":false}}"#)
            })
            .collect();
        let top = records.iter().map(|r| r.1).max().unwrap_or(0);
        format!(
            r#"{{"products":{{"rowVersion":{top},"hasMore":false,"records":[{}]}}}}"#,
            list.join(",")
        )
    }

    fn apply_to(store: &mut Store, cat: &Catalogue, page: &str) -> SyncReport {
        let w = wanted(cat);
        let data: Box<RawValue> = serde_json::from_str(page).unwrap();
        let entries = parse_page(cat, &w, &data, None).unwrap();
        apply_entries(store, cat, &entries).unwrap()
    }

    /// A later pull mixes new records, plain updates, stale versions and a
    /// record with a local edit pending, in any order: each takes its own
    /// path whatever the record before it took.
    #[test]
    fn a_later_pull_mixes_new_records_updates_stale_versions_and_pending_edits() {
        let cat = Catalogue::documented();
        let mut store = memory_store(&cat).unwrap();
        let first = products_page(&[(1, 10, "v1"), (2, 10, "v1"), (3, 10, "v1"), (4, 10, "v1")]);
        assert_eq!(apply_to(&mut store, &cat, &first).applied(), 4);
        {
            let mut tx = store.begin().unwrap();
            let coll = tx.coll_id("products").unwrap();
            let row = store::row_by_server_id(&tx, coll, 3).unwrap().unwrap();
            tx.insert_pending(row.local_id, 1, Op::Update, Some(&row.data))
                .unwrap();
            tx.commit().unwrap();
        }
        let later = products_page(&[
            (5, 30, "new"),
            (1, 20, "v2"),
            (6, 31, "new"),
            (2, 5, "stale"),
            (7, 32, "new"),
            (3, 21, "v2"),
            (4, 22, "v2"),
            (4, 22, "v2"),
        ]);
        let report = apply_to(&mut store, &cat, &later);
        assert_eq!(report.collections["products"].conflicts, 1, "{report:?}");
        let tx = store.begin().unwrap();
        let coll = tx.coll_id("products").unwrap();
        let row = |id| store::row_by_server_id(&tx, coll, id).unwrap().unwrap();
        for id in [5, 6, 7] {
            assert!(row(id).data.contains("\"new\""), "{id} inserted");
        }
        for (id, rv) in [(1, 20), (4, 22)] {
            assert_eq!(row(id).row_version, Some(rv));
            assert!(row(id).data.contains("\"v2\""), "{id} updated");
        }
        assert_eq!(
            row(2).row_version,
            Some(10),
            "a stale version changes nothing"
        );
        assert!(row(2).data.contains("\"v1\""));
        assert_eq!(store::count_rows(&tx, coll, true).unwrap(), 7);
    }

    #[test]
    fn a_valid_page_parses_parents_first_and_applies() {
        let cat = Catalogue::documented();
        let w = wanted(&cat);
        let data: Box<RawValue> = serde_json::from_str(PAGE).unwrap();
        let entries = parse_page(&cat, &w, &data, None).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.def.name.as_str()).collect();
        assert_eq!(names, ["products", "orderDetails"]);
        assert_eq!(entries[0].checkpoint(), Some(12));
        let report = apply_fresh(&cat, &entries).unwrap();
        assert_eq!(report.applied(), 3);
        assert_eq!(report.collections["products"].deleted, 1);
    }

    /// Mutated pages (cut, bytes flipped, values swapped for other types)
    /// are refused or applied, never a panic (that a refused page leaves the
    /// store untouched is checked end to end in tests/e2e).
    #[test]
    fn mangled_pages_never_panic() {
        let cat = Catalogue::documented();
        let w = wanted(&cat);
        let mut rng = fastrand::Rng::with_seed(11);
        let bytes = PAGE.as_bytes();
        let swaps: [(&str, &str); 6] = [
            ("10", "\"10\""),
            ("false", "null"),
            ("null", "[]"),
            ("1,", "-1.5,"),
            ("\"records\"", "\"recordz\""),
            ("[", "{"),
        ];
        for i in 0..3_000 {
            let mut text = String::from_utf8_lossy(bytes).into_owned();
            match i % 3 {
                0 => text.truncate(rng.usize(..text.len())),
                1 => {
                    let mut b = text.into_bytes();
                    let at = rng.usize(..b.len());
                    b[at] = rng.u8(32..127);
                    text = String::from_utf8_lossy(&b).into_owned();
                }
                _ => {
                    let (from, to) = swaps[rng.usize(..swaps.len())];
                    text = text.replacen(from, to, 1 + rng.usize(..3));
                }
            }
            let Ok(data) = serde_json::from_str::<Box<RawValue>>(&text) else {
                continue;
            };
            let Ok(entries) = parse_page(&cat, &w, &data, Some("t")) else {
                continue;
            };
            // Whatever parse_page let through must apply without a panic.
            let _ = apply_fresh(&cat, &entries);
        }
    }
}
