//! The resolve step: a pending local change meets a newer server version
//! (a pull brought it, or a save was answered 2002), and the collection's
//! policy or the app's resolver decides (`conflict.rs`); the outcome is
//! stored and, when it overrode something local, logged in the conflict
//! log (DESIGN.md section 8).

use serde_json::{Map, Value};

use crate::catalogue::CollectionDef;
use crate::conflict::{self, ConflictResolver};
use crate::error::{RecordError, Result};
use crate::record::Op;
use crate::report::SyncReport;
use crate::store::{self, Tx};
use crate::sync::context::Context;
use crate::sync::push::{self, Group};

/// Resolves a 2002 answer: with the server's record, at once; without it,
/// by pulling the collections concerned, which resolves on apply. Returns
/// those collections, for the driver to pull.
pub(crate) fn rejected(
    ctx: &Context<'_>,
    batch: &[Group],
    errors: &[RecordError],
    report: &mut SyncReport,
) -> Result<Vec<String>> {
    let cat = &ctx.catalogue;
    let mut refetch: Vec<String> = Vec::new();
    ctx.db.write(|tx| {
        for err in errors {
            let server = err.server_record.as_ref().and_then(Value::as_object);
            match (push::named(cat, batch, err), server) {
                (Some((_, change)), Some(server)) => {
                    let Some(def) = cat.get(&change.collection) else {
                        continue;
                    };
                    let (Some(row), Some(p)) = (
                        store::row_by_local_id(tx, change.local_id)?,
                        store::pending_of(tx, change.local_id)?,
                    ) else {
                        continue;
                    };
                    let deleted = server
                        .get("deleted")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let resolver = ctx.resolvers.get(&def.name).map(|r| r.as_ref());
                    resolve_conflict(tx, def, resolver, &row, &p, server, deleted, report)?;
                }
                (Some((_, change)), None) => refetch.push(change.collection.clone()),
                (None, _) => refetch.extend(err.entity.iter().cloned()),
            }
        }
        Ok(())
    })?;
    if errors.is_empty() {
        refetch.extend(
            batch
                .iter()
                .flat_map(|g| &g.changes)
                .map(|c| c.collection.clone()),
        );
    }
    refetch.sort();
    refetch.dedup();
    refetch.retain(|c| cat.get(c).is_some());
    Ok(refetch)
}

/// Resolves a pending local change against a newer server version and
/// stores the outcome; shared by pull and by a save's 2002 answer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolve_conflict(
    tx: &Tx<'_>,
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
