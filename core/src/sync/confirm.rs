//! The confirm step: what the server said it saved becomes the truth
//! (DESIGN.md invariant 12). A record it saved is confirmed and mapped (its
//! server id onto itself and onto children that knew it only by its client
//! id), even when others of the request failed; one it refused is parked
//! with its words, one dead letter per write group; a create it may hold
//! without saying so is in doubt, for the driver to reconcile. A pull that
//! finds our own create confirms it here too (`apply.rs`).

use std::collections::HashMap;

use serde_json::Value;

use crate::api::dialect::{Change, SaveOutcome};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::Result;
use crate::listeners::{ChangeOrigin, Changes};
use crate::record::Op;
use crate::report::SyncReport;
use crate::store::{self, Tx};
use crate::sync::context::Context;
use crate::sync::park::park;
use crate::sync::push::Group;

/// Pulls that may fail to show a create the server says it already has,
/// before the create is parked with the server's words. More than one: a
/// save sent by an earlier process that was killed may still be on its way
/// in the server when this sync's first pull runs, and be applied after it.
const MAX_RECONCILE_PULLS: u32 = 2;

/// A refused change with the server's words: property, code, text.
type Refused<'a> = (&'a Change, Option<&'a str>, Option<i64>, &'a str);

/// What settling a save's outcomes left for the driver.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    /// Something was parked.
    pub(crate) parked: bool,
    /// Collections with creates the server may hold without saying so
    /// (sorted, each once): to reconcile by a pull.
    pub(crate) doubt: Vec<String>,
}

/// True when `change` may create its record on the server: a create, or
/// any change of a record that has no server id yet (created here, then
/// edited or deleted while its create was in doubt).
pub(crate) fn creates(change: &Change) -> bool {
    change.op == Op::Create || change.server_id.is_none()
}

/// Adds a refusal to its write group's list (one dead letter per group).
fn add_to_group<'a>(groups: &mut Vec<(i64, Vec<Refused<'a>>)>, group: i64, entry: Refused<'a>) {
    match groups.iter_mut().find(|(g, _)| *g == group) {
        Some((_, list)) => list.push(entry),
        None => groups.push((group, vec![entry])),
    }
}

/// Applies each record's outcome: saved ones confirmed and mapped (even
/// when others failed), refused ones parked with the server's words (one
/// dead letter per write group), and creates the server may hold left in
/// doubt. `reconciled` counts, per change, the pulls that found no record
/// of it.
pub(crate) fn settle(
    ctx: &Context<'_>,
    batch: &[Group],
    outcomes: &[SaveOutcome],
    tracking_id: Option<&str>,
    reconciled: &HashMap<i64, u32>,
    report: &mut SyncReport,
) -> Result<Settled> {
    let changes: Vec<(i64, &Change)> = batch
        .iter()
        .flat_map(|g| g.changes.iter().map(move |c| (g.id, c)))
        .collect();
    let mut refused: Vec<(i64, Vec<Refused<'_>>)> = Vec::new();
    let mut doubt: Vec<String> = Vec::new();
    let mut events = Changes::default();
    let cat = &ctx.catalogue;
    let idempotent = ctx.codec.idempotent_save();
    ctx.db.write(|tx| {
        for (&(group, change), outcome) in changes.iter().zip(outcomes) {
            let def = cat.require(&change.collection)?;
            match outcome {
                SaveOutcome::Saved {
                    server_id: Some(sid),
                    row_version,
                } => {
                    confirm_saved(
                        tx,
                        cat,
                        def,
                        change.local_id,
                        Some(change.counter),
                        *sid,
                        *row_version,
                        None,
                        || {
                            let mut base = change.payload.clone();
                            base.insert(def.id_field.clone(), Value::from(*sid));
                            base.insert(
                                "rowVersion".into(),
                                row_version.map_or(Value::Null, Value::from),
                            );
                            Ok(serde_json::to_string(&base)?)
                        },
                        report,
                    )?;
                    events.note(
                        &change.collection,
                        Some(*sid),
                        change.client_id,
                        ChangeOrigin::Sync,
                    );
                }
                SaveOutcome::Refused {
                    property,
                    code,
                    message,
                } => {
                    let entry = (change, property.as_deref(), *code, message.as_str());
                    add_to_group(&mut refused, group, entry);
                }
                SaveOutcome::AlreadyThere { message }
                    if reconciled
                        .get(&change.local_id)
                        .is_some_and(|&pulls| pulls >= MAX_RECONCILE_PULLS) =>
                {
                    // A pull found no record of ours, yet the server says it
                    // has one: the server's words go to the app.
                    add_to_group(&mut refused, group, (change, None, None, message.as_str()));
                }
                // Saved without an id to map, already there, or not
                // answered: a create may be on the server; anything else
                // may be sent again.
                SaveOutcome::Saved {
                    server_id: None, ..
                }
                | SaveOutcome::AlreadyThere { .. }
                | SaveOutcome::Unknown => {
                    if creates(change) && !idempotent {
                        doubt.push(change.collection.clone());
                    }
                }
            }
        }
        Ok(())
    })?;
    ctx.emit(events);
    for (_, list) in &refused {
        let ids: Vec<i64> = list.iter().map(|(c, ..)| c.local_id).collect();
        let (first, property, code, _) = list[0];
        let mut words: Vec<&str> = list.iter().map(|(.., m)| *m).collect();
        words.dedup();
        park(
            ctx,
            &ids,
            code.unwrap_or(0),
            &words.join("; "),
            Some(&first.collection),
            property,
            tracking_id,
            report,
        )?;
    }
    doubt.sort();
    doubt.dedup();
    Ok(Settled {
        parked: !refused.is_empty(),
        doubt,
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
