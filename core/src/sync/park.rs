//! Parking: changes the server refused go to the dead-letter queue with its
//! words, kept, never dropped (DESIGN.md invariant 3), and counted in the
//! report. Discarding a dead letter is the app's decision (`local.rs`).

use crate::error::Result;
use crate::log::LogLevel;
use crate::report::SyncReport;
use crate::store;
use crate::sync::context::Context;

/// Parks the changes `ids` in one new dead letter, each counted in the
/// report under its collection.
#[allow(clippy::too_many_arguments)]
pub(crate) fn park(
    ctx: &Context<'_>,
    ids: &[i64],
    code: i64,
    message: &str,
    entity: Option<&str>,
    field: Option<&str>,
    tracking_id: Option<&str>,
    report: &mut SyncReport,
) -> Result<()> {
    let collections = ctx.db.write(|tx| {
        let mut collections = Vec::with_capacity(ids.len());
        for &id in ids {
            collections.push(store::dead_letters::collection_of(tx, id)?);
        }
        tx.park(ids, code, message, entity, field, tracking_id)?;
        Ok(collections)
    })?;
    ctx.logger.log(LogLevel::Warn, "rowsync::push", || {
        format!(
            "parked {} change(s) in the dead-letter queue: code {code}{}, tracking id {}",
            ids.len(),
            field.map(|f| format!(", field `{f}`")).unwrap_or_default(),
            tracking_id.unwrap_or("none")
        )
    });
    for collection in collections {
        report.collection(&collection).parked += 1;
        report.parked += 1;
    }
    Ok(())
}
