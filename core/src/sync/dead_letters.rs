//! The dead-letter queue's side of the flows: parking changes the server
//! refused (kept, never dropped: invariant 3), and discarding a dead letter
//! the app gave up on, which returns each record to the server's version or
//! removes a create the server never had, with the lines that needed it.

use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::engine::{lock, Engine};
use crate::error::Result;
use crate::local::{self, Changes};
use crate::log::LogLevel;
use crate::store;

/// Parks the changes `ids` in one new dead letter; returns the collection of
/// each change parked.
pub(crate) fn park(
    engine: &Engine,
    ids: &[i64],
    code: i64,
    message: &str,
    entity: Option<&str>,
    field: Option<&str>,
    tracking_id: Option<&str>,
) -> Result<Vec<String>> {
    let mut collections = Vec::with_capacity(ids.len());
    {
        let mut store = lock(&engine.store)?;
        let tx = store.begin()?;
        for &id in ids {
            collections.push(collection_of(&tx, id)?);
        }
        tx.park(ids, code, message, entity, field, tracking_id)?;
        tx.commit()?;
    }
    engine.logger.log(LogLevel::Warn, "rowsync::push", || {
        format!(
            "parked {} change(s) in the dead-letter queue: code {code}{}, tracking id {}",
            ids.len(),
            field.map(|f| format!(", field `{f}`")).unwrap_or_default(),
            tracking_id.unwrap_or("none")
        )
    });
    Ok(collections)
}

fn collection_of(conn: &rusqlite::Connection, local_id: i64) -> Result<String> {
    Ok(conn.query_row(
        "SELECT c.name FROM rs_collections c JOIN rs_records r ON r.coll = c.id WHERE r.local_id = ?1",
        [local_id],
        |r| r.get(0),
    )?)
}

/// Drops one parked change: back to the server's version, or gone.
pub(crate) fn discard_change(
    tx: &mut store::Tx<'_>,
    cat: &Catalogue,
    local_id: i64,
    changes: &mut Changes,
) -> Result<()> {
    let Some(row) = store::row_by_local_id(tx, local_id)? else {
        return Ok(());
    };
    let pending = store::pending_of(tx, local_id)?;
    let coll_name = collection_of(tx, local_id)?;
    changes.note(
        &coll_name,
        row.server_id,
        row.client_id,
        local::ChangeOrigin::Local,
    );
    match pending.and_then(|p| p.base) {
        Some(base) => {
            let deleted = serde_json::from_str::<Value>(&base)?
                .get("deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            tx.drop_pending(local_id)?;
            tx.update_record(local_id, row.server_id, row.row_version, deleted, &base)?;
        }
        None => {
            if let Some(cid) = row.client_id.filter(|&c| c != 0) {
                for child in cat.children_of(&coll_name) {
                    let ccoll = tx.coll_id(&child.name)?;
                    for l in tx.orphaned_creates(ccoll, cid)? {
                        tx.drop_pending(l)?;
                        tx.remove_record(l)?;
                    }
                }
            }
            tx.drop_pending(local_id)?;
            tx.remove_record(local_id)?;
        }
    }
    Ok(())
}
