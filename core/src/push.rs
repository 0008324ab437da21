//! Push: turning the outbox into `SaveAllDataV2` requests. Changes go in
//! outbox order (a parent's create before its children's), a write group is
//! never split, batches are bounded, and a change whose parent's create is
//! parked waits with it. A confirmed answer maps server ids and row versions
//! onto the records (and onto children that knew their parent only by its
//! client id) and clears exactly the changes that were sent, in one
//! transaction; an edit made while the request was in flight stays pending.

use std::collections::{HashMap, HashSet};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::catalogue::Catalogue;
use crate::error::{Error, RecordError, Result};
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
            if let Some(link) = &def.parent {
                let has_parent_id = payload.get(&link.id_field).is_some_and(|v| !v.is_null());
                let parent_cid = payload
                    .get(&link.client_id_field)
                    .and_then(Value::as_i64)
                    .filter(|&c| c != 0);
                if let (false, Some(pcid)) = (has_parent_id, parent_cid) {
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

/// The `SaveAllDataV2` body for a batch, collections in catalogue order.
pub fn body(catalogue: &Catalogue, batch: &[Group]) -> Result<Vec<u8>> {
    let mut by_coll: HashMap<&str, Vec<&Map<String, Value>>> = HashMap::new();
    for c in batch.iter().flat_map(|g| &g.changes) {
        by_coll
            .entry(c.collection.as_str())
            .or_default()
            .push(&c.payload);
    }
    let mut out = Vec::with_capacity(256 * batch.len());
    out.push(b'{');
    let mut first = true;
    for def in catalogue.iter() {
        if let Some(records) = by_coll.get(def.name.as_str()) {
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut out, &def.name)?;
            out.push(b':');
            serde_json::to_writer(&mut out, records)?;
        }
    }
    out.push(b'}');
    Ok(out)
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

/// Applies a successful answer: maps ids and row versions, clears what was
/// confirmed (unless edited since), links children. Validates first.
pub fn confirm(
    tx: &mut Tx<'_>,
    catalogue: &Catalogue,
    batch: &[Group],
    data: &RawValue,
    tracking_id: Option<&str>,
    report: &mut SyncReport,
) -> Result<()> {
    let protocol = |collection: &str, message: String| Error::Protocol {
        collection: Some(collection.to_string()),
        message,
        tracking_id: tracking_id.map(str::to_string),
    };
    let map: HashMap<String, Value> = match serde_json::from_str::<Value>(data.get())? {
        Value::Object(m) => m.into_iter().collect(),
        Value::Null => HashMap::new(),
        _ => return Err(protocol("", "save answer `data` is not an object".into())),
    };
    // The batch's changes by (collection, client id) and (collection, server
    // id), built once: a save answer lists up to a whole batch.
    let mut by_client: HashMap<(&str, i64), &Change> = HashMap::new();
    let mut by_server: HashMap<(&str, i64), &Change> = HashMap::new();
    for c in batch.iter().flat_map(|g| &g.changes) {
        if let Some(cid) = c.client_id {
            by_client.entry((c.collection.as_str(), cid)).or_insert(c);
        }
        if let Some(sid) = c.server_id {
            by_server.entry((c.collection.as_str(), sid)).or_insert(c);
        }
    }
    // Validate the whole answer before touching anything.
    let mut confirmed: Vec<(&Change, i64, i64)> = Vec::new();
    for def in catalogue.iter() {
        let Some(list) = map.get(&def.name) else {
            continue;
        };
        let Some(list) = list.as_array() else {
            return Err(protocol(&def.name, "saved records are not a list".into()));
        };
        for (i, entry) in list.iter().enumerate() {
            let Some(obj) = entry.as_object() else {
                return Err(protocol(
                    &def.name,
                    format!("saved record {i} is not an object"),
                ));
            };
            let int = |k: &str| match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                    protocol(
                        &def.name,
                        format!("saved record {i}: `{k}` is not an integer"),
                    )
                }),
            };
            let (sid, cid, rv) = (
                int(&def.id_field)?,
                int(&def.client_id_field)?,
                int("rowVersion")?,
            );
            let (Some(sid), Some(rv)) = (sid, rv) else {
                return Err(protocol(
                    &def.name,
                    format!("saved record {i} lacks `{}` or `rowVersion`", def.id_field),
                ));
            };
            let change = cid
                .filter(|&c| c != 0)
                .and_then(|c| by_client.get(&(def.name.as_str(), c)))
                .or_else(|| by_server.get(&(def.name.as_str(), sid)));
            if let Some(change) = change {
                confirmed.push((*change, sid, rv));
            }
        }
    }
    for (change, sid, rv) in confirmed {
        let Some(def) = catalogue.get(&change.collection) else {
            continue;
        };
        let Some(row) = store::row_by_local_id(tx, change.local_id)? else {
            continue;
        };
        let mut current = row.object()?;
        current.insert(def.id_field.clone(), Value::from(sid));
        current.insert("rowVersion".into(), Value::from(rv));
        tx.update_record(
            row.local_id,
            Some(sid),
            Some(rv),
            row.deleted,
            &serde_json::to_string(&current)?,
        )?;
        match store::pending_of(tx, row.local_id)? {
            Some(p) if p.counter == change.counter => tx.drop_pending(row.local_id)?,
            Some(_) => {
                let mut base = change.payload.clone();
                base.insert(def.id_field.clone(), Value::from(sid));
                base.insert("rowVersion".into(), Value::from(rv));
                tx.confirm_overtaken(row.local_id, &serde_json::to_string(&base)?)?;
            }
            None => {}
        }
        if let Some(cid) = change.client_id {
            for child in catalogue.children_of(&def.name) {
                if let Some(link) = &child.parent {
                    let ccoll = tx.coll_id(&child.name)?;
                    tx.link_children(ccoll, &link.id_field, cid, sid)?;
                }
            }
            if change.op == Op::Create {
                report.id_mappings.push((def.name.clone(), cid, sid));
            }
        }
        report.collection(&def.name).pushed += 1;
        report.pushed += 1;
    }
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
            group(4, &["persons"]),
        ];
        let batches = pack(groups, 5, 3);
        let ids: Vec<Vec<i64>> = batches
            .iter()
            .map(|b| b.iter().map(|g| g.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 2], vec![3], vec![4]]);
    }
}
