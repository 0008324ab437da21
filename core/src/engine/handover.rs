//! A shared device changing hands (DESIGN.md invariant 16): who made the
//! changes still pending, and the ways out that lose nothing for a user
//! who will not sign in again: export that user's changes, then discard
//! them (only as exported, each kept in the discard trail). Signing in
//! again and syncing is the other way out; `wipe(true)` the only one that
//! drops them unexported.

use std::collections::HashSet;

use super::Engine;
use crate::error::{Error, Result};
use crate::listeners::Changes;
use crate::local;
use crate::locks::read;
use crate::log::LogLevel;
use crate::store::handover::{self, DiscardedChange, PendingChange, UserPending};

impl Engine {
    /// The outbox by the user that made each change, the oldest change's
    /// user first. A user other than the settings' one has changes that
    /// wait for that user's own login.
    pub fn pending_by_user(&self) -> Result<Vec<UserPending>> {
        self.db.read(handover::by_user)
    }

    /// The changes `user` made that are still in the outbox (parked ones
    /// too), in push order, to keep elsewhere before
    /// [`Engine::discard_pending`]. The export is remembered: a discard
    /// drops exactly the changes exported, as they were.
    pub fn export_pending(&self, user: &str) -> Result<Vec<PendingChange>> {
        self.db.write(|tx| {
            let changes = handover::changes_of(tx, user)?;
            tx.note_export(user, &changes)?;
            Ok(changes)
        })
    }

    /// Discards the changes `user` made that are still in the outbox: each
    /// record returns to the server's version, or disappears if the server
    /// never had it (with the creates of lines under it, whoever made
    /// them). Each change goes to the discard trail
    /// ([`Engine::discarded_changes`]) first. Refused with
    /// `PendingChanges` unless [`Engine::export_pending`] exported these
    /// very changes (none edited, added or gone since). Returns how many
    /// of the user's changes went.
    pub fn discard_pending(&self, user: &str) -> Result<u64> {
        let mut events = Changes::default();
        let (count, dependents) = {
            let cat = read(&self.catalogue)?;
            self.db.write(|tx| {
                let mine = handover::changes_of(tx, user)?;
                if mine.is_empty() {
                    tx.forget_export(user)?;
                    return Ok((0, 0));
                }
                if !handover::exported_as_is(tx, user, &mine)? {
                    return Err(Error::PendingChanges(mine.len() as u64));
                }
                let before = handover::all_changes(tx)?;
                let reason = format!("pending change of user `{user}`, discarded after an export");
                for c in &mine {
                    tx.record_discarded(c, &reason)?;
                }
                for c in &mine {
                    local::discard_change(tx, &cat, c.local_id, &mut events)?;
                }
                // Lines whose parent's create went with it.
                let left: HashSet<i64> = handover::all_changes(tx)?
                    .iter()
                    .map(|c| c.local_id)
                    .collect();
                let theirs: HashSet<i64> = mine.iter().map(|c| c.local_id).collect();
                let gone: Vec<&PendingChange> = before
                    .iter()
                    .filter(|c| !theirs.contains(&c.local_id) && !left.contains(&c.local_id))
                    .collect();
                let reason = format!(
                    "its parent, a create of user `{user}` the server never had, was discarded"
                );
                for c in &gone {
                    tx.record_discarded(c, &reason)?;
                }
                tx.forget_export(user)?;
                Ok((mine.len() as u64, gone.len()))
            })?
        };
        self.logger.log(LogLevel::Warn, "rowsync::handover", || {
            format!(
                "discarded {count} pending change(s) of user `{user}` after an export ({dependents} dependent line(s) with them); the discard trail keeps them"
            )
        });
        self.registry.emit_changes(&events.into_events());
        Ok(count)
    }

    /// The trail of changes discarded on purpose
    /// ([`Engine::discard_pending`]), oldest first.
    pub fn discarded_changes(&self) -> Result<Vec<DiscardedChange>> {
        self.db.read(handover::discarded)
    }
}
