//! The reconcile step, for creates whose save answer never came (DESIGN.md
//! invariant 11: never twice without the server's help). A create in doubt
//! is sent again only after a pull has shown, by client id, that the server
//! does not have it: [`in_doubt`] says which creates are in doubt and which
//! collections the driver must pull first; the pull confirms each one the
//! server holds (`apply.rs`, `confirm.rs`); [`settle`] then marks the ones
//! still missing as safe to send again.

use std::collections::{HashMap, HashSet};

use crate::api::dialect::Change;
use crate::error::Result;
use crate::listeners::{ChangeOrigin, Changes};
use crate::record::Op;
use crate::store;
use crate::sync::confirm::creates;
use crate::sync::context::Context;
use crate::sync::push::Group;

/// The creates in doubt, and what to pull before settling them.
#[derive(Debug, Default)]
pub(crate) struct Doubt {
    /// Each create in doubt: its collection and local id.
    creates: Vec<(String, i64)>,
    /// The collections to pull first (sorted, each once).
    pub(crate) to_pull: Vec<String>,
}

impl Doubt {
    /// True when no create is in doubt.
    pub(crate) fn is_empty(&self) -> bool {
        self.creates.is_empty()
    }

    /// Creates in doubt.
    pub(crate) fn len(&self) -> usize {
        self.creates.len()
    }
}

/// The collections of a batch's changes that may have created records
/// (sorted, each once): what a lost answer leaves in doubt.
pub(crate) fn creating(batch: &[Group]) -> Vec<String> {
    let mut collections: Vec<String> = batch
        .iter()
        .flat_map(|g| &g.changes)
        .filter(|c: &&Change| creates(c))
        .map(|c| c.collection.clone())
        .collect();
    collections.sort();
    collections.dedup();
    collections
}

/// The creates in doubt of `only` (or of every collection), of the user
/// logged in (another user's wait for that user's login). Their
/// collections are to be pulled first: all of them with `only` (the pull
/// must follow the save), else those not pulled whole in this sync.
pub(crate) fn in_doubt(
    ctx: &Context<'_>,
    only: Option<&[String]>,
    pulled: &HashSet<String>,
) -> Result<Doubt> {
    let user = ctx.client.username();
    let creates: Vec<(String, i64)> = ctx
        .db
        .read(|c| store::in_doubt(c, &user))?
        .into_iter()
        .filter(|(c, _)| only.is_none_or(|o| o.contains(c)))
        .collect();
    let mut to_pull: Vec<String> = creates
        .iter()
        .map(|(c, _)| c.clone())
        .filter(|c| only.is_some() || !pulled.contains(c))
        .collect();
    to_pull.sort();
    to_pull.dedup();
    Ok(Doubt { creates, to_pull })
}

/// After the pull: each create of `doubt` still in doubt is marked safe to
/// send again (counted in `reconciled`), or, when its record was deleted
/// here since, dropped with its record (the server never got it: nothing is
/// left to send).
pub(crate) fn settle(
    ctx: &Context<'_>,
    doubt: &Doubt,
    reconciled: &mut HashMap<i64, u32>,
) -> Result<()> {
    let user = ctx.client.username();
    let still = ctx.db.read(|c| store::in_doubt(c, &user))?;
    let mut gone = Changes::default();
    ctx.db.write(|tx| {
        for (name, local_id) in still
            .into_iter()
            .filter(|(c, l)| doubt.creates.iter().any(|(dc, dl)| dc == c && dl == l))
        {
            let deleted = store::pending_of(tx, local_id)?.is_some_and(|p| p.op == Op::Delete);
            if deleted {
                if let Some(row) = store::row_by_local_id(tx, local_id)? {
                    gone.note(&name, None, row.client_id, ChangeOrigin::Sync);
                }
                tx.drop_pending(local_id)?;
                tx.remove_record(local_id)?;
                continue;
            }
            tx.clear_sent(local_id)?;
            *reconciled.entry(local_id).or_default() += 1;
        }
        Ok(())
    })?;
    ctx.emit(gone);
    Ok(())
}
