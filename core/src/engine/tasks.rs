//! The task queue's entry points (`tasks.rs` has its vocabulary): queue an
//! upload or a dispute, list and cancel them. Each checks what the app gave
//! and queues it in one transaction; a sync sends them (`sync/tasks.rs`).
//! [`Engine::reconcile_dispute`] builds the `SolveDispute` items of a
//! collection from the replica, as the vendor's plugin does to repair a
//! diverged replica.

use super::Engine;
use crate::error::{Error, Result};
use crate::local;
use crate::locks::read;
use crate::record::RecordId;
use crate::store::{self, tasks};
use crate::tasks::{
    check_file_name, content_type_of, OrderDisputeItem, RecordDisputeItem, Spec, TaskInfo,
    TaskKind, UploadSource,
};

impl Engine {
    /// Queues a file for record `id` of `collection` (`/Sync/Upload`). The
    /// bytes are copied into the replica now, in one transaction, so the
    /// app may delete its copy; the upload is sent by a sync once the
    /// record has a server id. A file over `Settings::max_upload_bytes` is
    /// `FileTooLarge`; an unknown record is `NotFound`; nothing is queued
    /// then. Returns the upload's id.
    pub fn queue_upload(
        &self,
        collection: &str,
        id: RecordId,
        source: UploadSource,
        file_name: &str,
    ) -> Result<i64> {
        let def = read(&self.catalogue)?.require(collection)?.clone();
        check_file_name(collection, file_name)?;
        let limit = self.settings()?.max_upload_bytes;
        let data = match source {
            UploadSource::Bytes(b) => b,
            UploadSource::Path(path) => {
                let cannot = |e: std::io::Error| {
                    Error::invalid(
                        collection,
                        "file",
                        format!("cannot read `{}`: {e}", path.display()),
                    )
                };
                let size = std::fs::metadata(&path).map_err(cannot)?.len();
                if size > limit {
                    return Err(Error::FileTooLarge { size, limit });
                }
                std::fs::read(&path).map_err(cannot)?
            }
        };
        let size = data.len() as u64;
        if size > limit {
            return Err(Error::FileTooLarge { size, limit });
        }
        self.db.write(|tx| {
            let coll = tx.coll_id(&def.name)?;
            let row = match local::find(tx, coll, id)? {
                Some(row) if !row.deleted => row,
                _ => {
                    return Err(Error::NotFound {
                        collection: collection.to_string(),
                        id: id.to_string(),
                    })
                }
            };
            let spec = Spec::Upload {
                collection: def.name.clone(),
                server_id: row.server_id,
                client_id: row.client_id.filter(|&c| c != 0),
                file_name: file_name.to_string(),
                content_type: content_type_of(file_name).to_string(),
            };
            let task = tasks::insert_task(tx, TaskKind::Upload, &spec, Some(row.local_id), size)?;
            tx.insert_task_file(task, &data)?;
            Ok(task)
        })
    }

    /// Queues `SolveOrderDispute` for `items` (orders by server id). The
    /// real server takes them in one request; the documented dialect in one
    /// request per order. Returns the queued tasks' ids.
    pub fn solve_order_dispute(&self, items: Vec<OrderDisputeItem>) -> Result<Vec<i64>> {
        let codec = read(&self.settings)?.dialect.codec();
        if items.is_empty() {
            return Err(Error::invalid("orders", "items", "no order to dispute"));
        }
        for item in &items {
            if item.order_id <= 0 {
                return Err(Error::invalid(
                    "orders",
                    "order_id",
                    format!("`{}` is not a server id", item.order_id),
                ));
            }
            codec.check_order_dispute(item)?;
            if !item.amount.is_finite() {
                return Err(Error::invalid("orders", "amount", "not a finite number"));
            }
        }
        let per_request = codec.order_disputes_per_request().max(1);
        self.db.write(|tx| {
            let mut ids = Vec::new();
            for chunk in items.chunks(per_request) {
                let spec = Spec::OrderDispute {
                    items: chunk.to_vec(),
                };
                ids.push(tasks::insert_task(
                    tx,
                    TaskKind::OrderDispute,
                    &spec,
                    None,
                    0,
                )?);
            }
            Ok(ids)
        })
    }

    /// Queues `SolveDispute` for records of `collection` (by server id and
    /// row version). The real server takes them in one request; the
    /// documented dialect in one request per record. Returns the queued
    /// tasks' ids.
    pub fn solve_dispute(
        &self,
        collection: &str,
        items: Vec<RecordDisputeItem>,
    ) -> Result<Vec<i64>> {
        let def = read(&self.catalogue)?.require(collection)?.clone();
        if items.is_empty() {
            return Err(Error::invalid(collection, "items", "no record to dispute"));
        }
        for item in &items {
            if item.id <= 0 {
                return Err(Error::invalid(
                    collection,
                    "id",
                    format!("`{}` is not a server id", item.id),
                ));
            }
            if item.row_version < 0 {
                return Err(Error::invalid(
                    collection,
                    "row_version",
                    format!("`{}` is negative", item.row_version),
                ));
            }
        }
        self.queue_disputes(&def.name, items)
    }

    fn queue_disputes(&self, collection: &str, items: Vec<RecordDisputeItem>) -> Result<Vec<i64>> {
        let per_request = read(&self.settings)?
            .dialect
            .codec()
            .disputes_per_request()
            .max(1);
        self.db.write(|tx| {
            let mut ids = Vec::new();
            for chunk in items.chunks(per_request) {
                let spec = Spec::Dispute {
                    collection: collection.to_string(),
                    items: chunk.to_vec(),
                };
                ids.push(tasks::insert_task(tx, TaskKind::Dispute, &spec, None, 0)?);
            }
            Ok(ids)
        })
    }

    /// Queues the `SolveDispute` items that tell the server which records
    /// of `collection` the replica holds, at which row versions (every live
    /// record with a server id), as the vendor's plugin does to repair a
    /// diverged replica: in requests of up to
    /// [`crate::tasks::RECONCILE_ITEMS_PER_REQUEST`] records (one per record in the
    /// documented dialect, with resolution `reconcile`). Returns the
    /// queued tasks' ids (none for a collection with no such record).
    pub fn reconcile_dispute(&self, collection: &str) -> Result<Vec<i64>> {
        let def = read(&self.catalogue)?.require(collection)?.clone();
        let held = self
            .db
            .read(|conn| tasks::held_versions(conn, store::coll_id_of(conn, &def.name)?))?;
        let items: Vec<RecordDisputeItem> = held
            .into_iter()
            .map(|(id, row_version)| RecordDisputeItem {
                id,
                row_version,
                resolution: "reconcile".into(),
                reason: String::new(),
            })
            .collect();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.queue_disputes(&def.name, items)
    }

    /// Every queued upload and dispute, parked ones included, oldest first.
    pub fn tasks(&self) -> Result<Vec<TaskInfo>> {
        self.db.read(tasks::list)
    }

    /// The queued uploads, parked ones included, oldest first.
    pub fn uploads(&self) -> Result<Vec<TaskInfo>> {
        Ok(self
            .tasks()?
            .into_iter()
            .filter(|t| t.kind == TaskKind::Upload)
            .collect())
    }

    /// Removes a queued upload or dispute that is not parked (a parked one
    /// goes with `discard_dead_letter`). `NotFound` if there is none.
    pub fn cancel_task(&self, id: i64) -> Result<()> {
        self.db.write(|tx| {
            if !tx.delete_task(id, true)? {
                return Err(Error::NotFound {
                    collection: "tasks".into(),
                    id: id.to_string(),
                });
            }
            Ok(())
        })
    }
}
