//! Push: turning the outbox into save requests. Changes go in
//! outbox order (a parent's create before its children's), a write group is
//! never split, batches are bounded, and a change whose parent's create is
//! parked waits with it. A confirmed answer maps server ids and row versions
//! onto the records (and onto children that knew their parent only by its
//! client id) and clears exactly the changes that were sent, in one
//! transaction; an edit made while the request was in flight stays pending.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::{RecordError, Result};
use crate::report::SyncReport;
use crate::store::{self, Op, Tx};

/// One pending change, ready to send.
#[derive(Debug, Clone)]
pub struct Change {
    /// The collection.
    pub collection: String,
    /// The record's local id.
    pub local_id: i64,
    /// The change counter when the payload was built.
    pub counter: i64,
    /// The kind of change.
    pub op: Op,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id, if any (non-zero).
    pub client_id: Option<i64>,
    /// The record as sent.
    pub payload: Map<String, Value>,
}

/// A write group: changes that travel together.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group id.
    pub id: i64,
    /// Its changes, in outbox order.
    pub changes: Vec<Change>,
}

/// Reads the outbox and returns the groups that can be sent now, in order.
/// A group waits when one of its changes is a child whose parent has no
/// server id yet and whose parent's create is parked or itself waiting.
/// At most about `max_changes` changes are planned (whole groups).
pub fn plan(
    conn: &rusqlite::Connection,
    catalogue: &Catalogue,
    max_changes: usize,
) -> Result<Vec<Group>> {
    let pending = store::pending_in_order(conn)?;
    let mut order: Vec<i64> = Vec::new();
    let mut by_group: HashMap<i64, Vec<(String, store::Pending)>> = HashMap::new();
    for (name, p) in pending {
        let entry = by_group.entry(p.group_id).or_default();
        if entry.is_empty() {
            order.push(p.group_id);
        }
        entry.push((name, p));
    }
    let mut held: HashSet<i64> = HashSet::new();
    let mut out = Vec::new();
    let mut planned = 0usize;
    for gid in order {
        if planned >= max_changes {
            break;
        }
        let Some(members) = by_group.remove(&gid) else {
            continue;
        };
        let mut changes = Vec::with_capacity(members.len());
        let mut wait = false;
        for (name, p) in &members {
            let Some(def) = catalogue.get(name) else {
                // Unregistered after the write: it cannot be sent until the
                // app registers the collection again.
                wait = true;
                continue;
            };
            let Some(row) = store::row_by_local_id(conn, p.local_id)? else {
                continue;
            };
            let mut payload = row.object()?;
            payload.insert(
                def.id_field.clone(),
                row.server_id.map_or(Value::Null, Value::from),
            );
            payload.insert(
                "rowVersion".into(),
                row.row_version.map_or(Value::Null, Value::from),
            );
            payload.insert("deleted".into(), Value::Bool(row.deleted));
            // Every parent the record names only by client id gets its
            // server id when it has one; a parent that is parked or waiting
            // holds the record back.
            for link in &def.links {
                let has_parent_id = payload.get(&link.id_field).is_some_and(|v| !v.is_null());
                let parent_cid = payload
                    .get(&link.client_id_field)
                    .and_then(Value::as_i64)
                    .filter(|&c| c != 0);
                let (false, Some(pcid)) = (has_parent_id, parent_cid) else {
                    continue;
                };
                let pcoll = store::coll_id_of(conn, &link.collection)?;
                if let Some(parent) = store::row_by_client_id(conn, pcoll, pcid)? {
                    match parent.server_id {
                        Some(psid) => {
                            payload.insert(link.id_field.clone(), Value::from(psid));
                        }
                        None => {
                            if held.contains(&parent.local_id)
                                || store::is_parked(conn, parent.local_id)?
                            {
                                wait = true;
                            }
                        }
                    }
                }
            }
            changes.push(Change {
                collection: name.clone(),
                local_id: p.local_id,
                counter: p.counter,
                op: p.op,
                server_id: row.server_id,
                client_id: row.client_id.filter(|&c| c != 0),
                payload,
            });
        }
        if wait {
            held.extend(members.iter().map(|(_, p)| p.local_id));
        } else if !changes.is_empty() {
            planned += changes.len();
            out.push(Group { id: gid, changes });
        }
    }
    Ok(out)
}

/// Packs groups into batches of at most `max_records` changes and at most
/// `max_per_collection` of one collection; a bigger group goes alone.
pub fn pack(groups: Vec<Group>, max_records: usize, max_per_collection: usize) -> Vec<Vec<Group>> {
    let mut batches: Vec<Vec<Group>> = Vec::new();
    let mut current: Vec<Group> = Vec::new();
    let mut count = 0usize;
    let mut per: HashMap<String, usize> = HashMap::new();
    for g in groups {
        let mut g_per: HashMap<&str, usize> = HashMap::new();
        for c in &g.changes {
            *g_per.entry(c.collection.as_str()).or_default() += 1;
        }
        let fits = count + g.changes.len() <= max_records
            && g_per
                .iter()
                .all(|(k, n)| per.get(*k).copied().unwrap_or(0) + n <= max_per_collection);
        if !fits && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            count = 0;
            per.clear();
        }
        count += g.changes.len();
        for (k, n) in g_per {
            *per.entry(k.to_string()).or_default() += n;
        }
        current.push(g);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The changes of a batch that a server error names.
pub fn named<'a>(
    catalogue: &Catalogue,
    batch: &'a [Group],
    err: &RecordError,
) -> Option<(&'a Group, &'a Change)> {
    let entity = err.entity.as_deref()?;
    let def = catalogue.get(entity)?;
    let server_record = err.server_record.as_ref().and_then(Value::as_object);
    let cid = err
        .client_id
        .or_else(|| {
            server_record
                .and_then(|r| r.get(&def.client_id_field))
                .and_then(Value::as_i64)
        })
        .filter(|&c| c != 0);
    let sid = err.id.or_else(|| {
        server_record
            .and_then(|r| r.get(&def.id_field))
            .and_then(Value::as_i64)
    });
    batch.iter().find_map(|g| {
        g.changes
            .iter()
            .find(|c| {
                c.collection == entity
                    && ((cid.is_some() && c.client_id == cid)
                        || (sid.is_some() && c.server_id == sid))
            })
            .map(|c| (g, c))
    })
}

/// Confirms that the server holds the record `local_id` as `sid` at `rv`:
/// maps the ids onto the record and onto children that knew it only by its
/// client id, and clears its pending change if that is still the version
/// `sent_counter` saw; a later edit stays pending, over `base` (the version
/// the server now holds). `record` replaces the stored text when the change
/// is cleared (the server's copy on a pull; `None` keeps the local text).
#[allow(clippy::too_many_arguments)]
pub(crate) fn confirm_saved(
    tx: &Tx<'_>,
    catalogue: &Catalogue,
    def: &CollectionDef,
    local_id: i64,
    sent_counter: Option<i64>,
    sid: i64,
    rv: Option<i64>,
    record: Option<(&str, bool)>,
    base: impl FnOnce() -> Result<String>,
    report: &mut SyncReport,
) -> Result<()> {
    let Some(row) = store::row_by_local_id(tx, local_id)? else {
        return Ok(());
    };
    let rv = rv.or(row.row_version);
    let pending = store::pending_of(tx, local_id)?;
    let cleared = matches!(&pending, Some(p) if Some(p.counter) == sent_counter);
    match record {
        Some((text, deleted)) if cleared || pending.is_none() => {
            tx.update_record(local_id, Some(sid), rv, deleted, text)?;
        }
        _ => {
            let mut current = row.object()?;
            current.insert(def.id_field.clone(), Value::from(sid));
            current.insert("rowVersion".into(), rv.map_or(Value::Null, Value::from));
            tx.update_record(
                local_id,
                Some(sid),
                rv,
                row.deleted,
                &serde_json::to_string(&current)?,
            )?;
        }
    }
    let created = row.server_id.is_none();
    match pending {
        Some(_) if cleared => tx.drop_pending(local_id)?,
        Some(_) => tx.confirm_overtaken(local_id, &base()?)?,
        None => {}
    }
    if let (Some(cid), true) = (row.client_id.filter(|&c| c != 0), created) {
        for child in catalogue.children_of(&def.name) {
            if let Some(link) = &child.parent {
                let ccoll = tx.coll_id(&child.name)?;
                tx.link_children(ccoll, &link.id_field, cid, sid)?;
            }
        }
        report.id_mappings.push((def.name.clone(), cid, sid));
    }
    report.collection(&def.name).pushed += 1;
    report.pushed += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: i64, colls: &[&str]) -> Group {
        Group {
            id,
            changes: colls
                .iter()
                .map(|c| Change {
                    collection: c.to_string(),
                    local_id: 0,
                    counter: 1,
                    op: Op::Create,
                    server_id: None,
                    client_id: None,
                    payload: Map::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn pack_never_splits_a_group_and_respects_limits() {
        let groups = vec![
            group(1, &["orders", "orderDetails", "orderDetails"]),
            group(2, &["orders", "orderDetails"]),
            group(3, &["orders"; 6]),
            group(4, &["people"]),
        ];
        let batches = pack(groups, 5, 3);
        let ids: Vec<Vec<i64>> = batches
            .iter()
            .map(|b| b.iter().map(|g| g.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 2], vec![3], vec![4]]);
    }
}
