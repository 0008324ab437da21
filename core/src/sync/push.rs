//! The push step: the outbox turned into save requests, and each request's
//! answer handed back to the driver. Changes go in outbox order (a
//! parent's create before its children's), a write group is never split,
//! batches are bounded, and a change whose parent's create is parked waits
//! with it. A batch is marked sent before its call (durably: a lost answer
//! is known at the next sync); what its answer says is settled by
//! `confirm.rs`, `resolve.rs` or `reconcile.rs`, as the driver decides. A
//! whole request refused parks what its errors name, or the batch, or
//! comes back split in two to find its culprit.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::api::client::{CallKind, Outgoing};
use crate::api::dialect::{parse_save_text, Change, RefusalScope, SaveOutcome};
use crate::catalogue::Catalogue;
use crate::error::{Error, RecordError, Result};
use crate::report::SyncReport;
use crate::store;
use crate::sync::context::Context;
use crate::sync::park::park;

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
/// server id yet and whose parent's create is parked or itself waiting,
/// and when one of its changes was made by another user than `user`, the
/// one logged in (invariant 16: it stays, in order, for its own user; a
/// change of `user` that depends on it waits too). At most about
/// `max_changes` changes are planned (whole groups).
pub fn plan(
    conn: &rusqlite::Connection,
    catalogue: &Catalogue,
    user: &str,
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
            if p.author.as_deref().is_some_and(|a| a != user) {
                wait = true;
                continue;
            }
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

/// What a save's answer said.
pub(crate) enum Answer {
    /// One outcome per change of the batch, to settle.
    Outcomes {
        outcomes: Vec<SaveOutcome>,
        tracking_id: Option<String>,
    },
    /// The whole request was refused.
    Refused {
        code: i64,
        message: String,
        errors: Vec<RecordError>,
        tracking_id: Option<String>,
    },
    /// The answer never came whole: its creates are in doubt.
    Lost(Error),
    /// 2002: records the server holds newer versions of.
    Conflict {
        message: String,
        errors: Vec<RecordError>,
        tracking_id: Option<String>,
    },
}

/// What a whole refused request led to.
pub(crate) enum Refusal {
    /// The culprits (or the batch) were parked.
    Parked,
    /// No culprit was named: send these halves, in order.
    Split(Vec<Group>, Vec<Group>),
}

/// A save refused as a whole with no per-record result: an unknown
/// outcome, not a refusal (invariant 15).
fn refused_unanswered(message: &str, tracking_id: Option<String>) -> Error {
    let message = match message.trim() {
        "" => "the server refused the save as a whole, without a reason".to_string(),
        m => format!("the server refused the save as a whole, with no word on any record: {m}"),
    };
    Error::InDoubt {
        message,
        tracking_id,
    }
}

/// Sends one batch, marked sent first, and reads its answer.
pub(crate) fn send(ctx: &Context<'_>, batch: &[Group], report: &mut SyncReport) -> Result<Answer> {
    let changes: Vec<&Change> = batch.iter().flat_map(|g| &g.changes).collect();
    let body = ctx.codec.save_body(&ctx.catalogue, &changes)?;
    ctx.db.write(|tx| {
        for c in &changes {
            let sent = serde_json::to_string(&c.payload)?;
            tx.mark_sent(c.local_id, c.counter, &sent)?;
        }
        Ok(())
    })?;
    report.push_requests += 1;
    let kind = if ctx.codec.idempotent_save() {
        CallKind::Idempotent
    } else {
        CallKind::Save
    };
    let reply = match ctx.call(&ctx.endpoints.save, &Outgoing::json(&body), kind) {
        Ok(reply) => reply,
        Err(e @ Error::InDoubt { .. }) => return Ok(Answer::Lost(e)),
        Err(Error::Conflict {
            message,
            errors,
            tracking_id,
        }) => {
            return Ok(Answer::Conflict {
                message,
                errors,
                tracking_id,
            })
        }
        // `Result: false` on a 2xx with no `Data` at all and no word on
        // any record (mahak): an unknown outcome, not a refusal.
        Err(Error::Rejected {
            status: 200..=299,
            message,
            errors,
            tracking_id,
            ..
        }) if kind == CallKind::Save && errors.is_empty() => {
            return Ok(Answer::Lost(refused_unanswered(&message, tracking_id)));
        }
        Err(Error::Rejected {
            code,
            message,
            errors,
            tracking_id,
            ..
        }) => {
            return Ok(Answer::Refused {
                code,
                message,
                errors,
                tracking_id,
            })
        }
        Err(e) => return Err(e),
    };
    let answer = parse_save_text(
        ctx.codec,
        &ctx.catalogue,
        &changes,
        &reply.data,
        &ctx.rules,
        reply.tracking_id.as_deref(),
    );
    match answer {
        // `Result: false` and not a word on any record: the server may
        // have applied any of it (invariant 15), so the outcome is unknown,
        // as for a lost answer: the creates are in doubt and a pull
        // reconciles them before anything is sent again.
        Ok(answer)
            if !reply.success && answer.outcomes.iter().all(|o| *o == SaveOutcome::Unknown) =>
        {
            Ok(Answer::Lost(refused_unanswered(
                &reply.message,
                reply.tracking_id,
            )))
        }
        Ok(answer) => Ok(Answer::Outcomes {
            outcomes: answer.outcomes,
            tracking_id: reply.tracking_id,
        }),
        // An answer that cannot be read may still mean the server saved:
        // never resend its creates blindly.
        Err(e) if kind == CallKind::Save => Ok(Answer::Lost(e)),
        Err(e) => Err(e),
    }
}

/// A whole request refused: parks what the errors name, else the batch
/// when the codec says the request itself is to blame or the batch is one
/// group, else splits it to isolate the culprit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn refusal(
    ctx: &Context<'_>,
    batch: Vec<Group>,
    code: i64,
    message: &str,
    errors: &[RecordError],
    tracking_id: Option<&str>,
    report: &mut SyncReport,
) -> Result<Refusal> {
    let isolatable = ctx.codec.refusal_scope(code) == RefusalScope::Isolate;
    if isolatable && park_named(ctx, &batch, errors, code, message, tracking_id, report)? > 0 {
        return Ok(Refusal::Parked);
    }
    if !isolatable || batch.len() == 1 {
        // An unknown code means the server found the request malformed (a
        // bug on our side): park the batch rather than loop on it.
        let ids: Vec<i64> = batch
            .iter()
            .flat_map(|g| &g.changes)
            .map(|c| c.local_id)
            .collect();
        park(ctx, &ids, code, message, None, None, tracking_id, report)?;
        return Ok(Refusal::Parked);
    }
    // No usable errors list: bisect until the culprit is alone.
    let mut left = batch;
    let right = left.split_off(left.len() / 2);
    Ok(Refusal::Split(left, right))
}

/// Parks each group the errors name; returns how many groups.
#[allow(clippy::too_many_arguments)]
pub(crate) fn park_named(
    ctx: &Context<'_>,
    batch: &[Group],
    errors: &[RecordError],
    code: i64,
    message: &str,
    tracking_id: Option<&str>,
    report: &mut SyncReport,
) -> Result<usize> {
    let mut done: Vec<i64> = Vec::new();
    for err in errors {
        if let Some((group, _)) = named(&ctx.catalogue, batch, err) {
            if done.contains(&group.id) {
                continue;
            }
            done.push(group.id);
            let ids: Vec<i64> = group.changes.iter().map(|c| c.local_id).collect();
            park(
                ctx,
                &ids,
                err.code.unwrap_or(code),
                err.message.as_deref().unwrap_or(message),
                err.entity.as_deref(),
                err.field.as_deref(),
                tracking_id,
                report,
            )?;
        }
    }
    Ok(done.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Op;
    use serde_json::Map;

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
