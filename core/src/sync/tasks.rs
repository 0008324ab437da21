//! Sending the task queue (uploads and disputes) at the end of a sync,
//! after the push, so an upload's record already has its server id.
//!
//! Each task is marked sent, durably, before its call. A task found marked
//! sent was sent by a sync whose answer never came (a kill, a lost
//! answer): a dispute to the real server, which does not deduplicate, is
//! then parked rather than sent twice; an upload (keyed by its record) and
//! a documented dispute (deduplicated by its request id) are sent again.
//! A refusal parks the task with the server's words; a transient failure
//! ends the sync with its error and the task stays queued.

use std::cell::Cell;

use crate::api::client::{Outgoing, Progress};
use crate::api::dialect::UploadAnswer;
use crate::error::{Error, Result};
use crate::listeners::{ChangeOrigin, Changes};
use crate::log::LogLevel;
use crate::report::SyncReport;
use crate::status::ConnectionState;
use crate::store::tasks::{self, TaskRow};
use crate::sync::context::Context;
use crate::tasks::{Spec, TaskKind};

/// Why a dispute to the real server is parked after a lost answer.
pub(crate) const DISPUTE_IN_DOUBT: &str = "the answer to this dispute never came: the server \
     may have applied it, and it does not deduplicate, so it is not sent again unless you retry it";

/// How often an upload's progress is told, in bytes of its file.
const PROGRESS_STEP: u64 = 64 * 1024;

/// `state` (an upload's, before its bytes) once `sent` bytes of the file
/// went out.
fn progressed(state: &ConnectionState, sent: u64) -> ConnectionState {
    let mut state = state.clone();
    if let ConnectionState::Uploading {
        bytes, bytes_done, ..
    } = &mut state
    {
        *bytes_done += sent.min(*bytes);
    }
    state
}

/// Sends every queued upload whose record has a server id, and every
/// queued dispute, oldest first.
pub(crate) fn send(ctx: &Context<'_>, report: &mut SyncReport) -> Result<()> {
    Tasks { ctx }.send_all(report)
}

/// The task step of one sync.
struct Tasks<'c, 's> {
    ctx: &'c Context<'s>,
}

impl Tasks<'_, '_> {
    fn send_all(&mut self, report: &mut SyncReport) -> Result<()> {
        let ready = self.ready_tasks(report)?;
        if ready.is_empty() {
            return Ok(());
        }
        let uploads: Vec<&(TaskRow, Option<i64>)> = ready
            .iter()
            .filter(|(t, _)| t.kind == TaskKind::Upload)
            .collect();
        let files = u32::try_from(uploads.len()).unwrap_or(u32::MAX);
        let bytes_total: u64 = uploads.iter().map(|(t, _)| t.size).sum();
        let mut file = 0u32;
        let mut bytes_done = 0u64;
        let result = (|| {
            for (task, server_id) in &ready {
                let mut at = None;
                if task.kind == TaskKind::Upload {
                    file += 1;
                    let state = ConnectionState::Uploading {
                        upload_id: task.id,
                        file,
                        files,
                        bytes: task.size,
                        bytes_done,
                        bytes_total,
                    };
                    self.ctx.events.set_state(state.clone());
                    at = Some((state, task.size));
                }
                self.send_task(task, *server_id, at, report)?;
                if task.kind == TaskKind::Upload {
                    bytes_done += task.size;
                }
            }
            Ok(())
        })();
        if files > 0 {
            self.ctx.events.set_state(ConnectionState::Syncing);
        }
        result
    }

    /// The tasks to send now, each upload with its record's server id.
    /// Uploads whose record is gone are parked; those whose record has no
    /// server id yet wait.
    fn ready_tasks(&mut self, report: &mut SyncReport) -> Result<Vec<(TaskRow, Option<i64>)>> {
        let queued = self
            .ctx
            .db
            .read(|conn| tasks::rows(conn, "parked IS NULL"))?;
        let mut ready = Vec::with_capacity(queued.len());
        for task in queued {
            if task.kind != TaskKind::Upload {
                ready.push((task, None));
                continue;
            }
            let record = self.ctx.db.read(|conn| tasks::upload_record(conn, &task))?;
            match record {
                None => self.park_task(
                    &task,
                    0,
                    "its record no longer exists (deleted or discarded before the upload was sent)",
                    None,
                    report,
                )?,
                Some(r) if r.deleted => self.park_task(
                    &task,
                    0,
                    "its record was deleted before the upload was sent",
                    None,
                    report,
                )?,
                // Without a server id, its record's own save goes first.
                Some(r) => {
                    if let Some(sid) = r.server_id {
                        ready.push((task, Some(sid)));
                    }
                }
            }
        }
        Ok(ready)
    }

    fn database_id(&self) -> i64 {
        self.ctx
            .client
            .session()
            .map(|s| s.database_id)
            .filter(|&d| d != 0)
            .unwrap_or(self.ctx.settings.database_id)
    }

    /// Sends one task and settles it.
    fn send_task(
        &mut self,
        task: &TaskRow,
        server_id: Option<i64>,
        uploading: Option<(ConnectionState, u64)>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let codec = self.ctx.codec;
        if task.sent && task.kind != TaskKind::Upload && !codec.resend_dispute_in_doubt() {
            return self.park_task(task, 0, DISPUTE_IN_DOUBT, None, report);
        }
        let request = {
            let cat = &self.ctx.catalogue;
            match &task.spec {
                Spec::OrderDispute { items } => {
                    codec.order_dispute_request(self.database_id(), &task.request_id, items)?
                }
                Spec::Dispute { collection, items } => {
                    let Some(def) = cat.get(collection) else {
                        return self.park_task(
                            task,
                            0,
                            &format!("the collection `{collection}` is no longer registered"),
                            None,
                            report,
                        );
                    };
                    codec.dispute_request(self.database_id(), def, &task.request_id, items)?
                }
                Spec::Upload {
                    collection,
                    file_name,
                    content_type,
                    ..
                } => {
                    let (Some(def), Some(sid)) = (cat.get(collection), server_id) else {
                        return Ok(());
                    };
                    let data = self.ctx.db.read(|conn| tasks::file(conn, task.id))?;
                    let Some(data) = data else {
                        return Err(Error::Database(format!(
                            "upload {} has lost its file",
                            task.id
                        )));
                    };
                    codec.upload_request(def, sid, file_name, content_type, &data)?
                }
            }
        };
        self.ctx.db.write(|tx| tx.mark_task_sent(task.id))?;
        // An upload's progress, as its body goes out: the file's share of
        // the bytes sent, told every `PROGRESS_STEP` bytes of it.
        let events = self.ctx.events;
        let body_len = request.body.len().max(1) as u64;
        let told = Cell::new(0u64);
        let tell = |sent: u64| {
            let Some((state, size)) = &uploading else {
                return;
            };
            let size = *size;
            let of_file = u64::try_from(
                u128::from(sent.min(body_len)) * u128::from(size) / u128::from(body_len),
            )
            .unwrap_or(size);
            if of_file.abs_diff(told.get()) >= PROGRESS_STEP
                || (of_file == size && told.get() != of_file)
            {
                told.set(of_file);
                // A listener's trouble does not stop the upload.
                events.set_state(progressed(state, of_file));
            }
        };
        let out = Outgoing {
            body: &request.body,
            content_type: request.content_type.clone(),
            headers: request.headers.clone(),
            token_query: request.token_query,
            // The real server's answers to these were never captured.
            lenient_answer: !codec.task_answers_known(),
            reuse_buffer: false,
            progress: uploading.as_ref().map(|_| Progress(&tell)),
        };
        let endpoint = request.endpoint.name(&self.ctx.endpoints);
        match self.ctx.call(endpoint, &out, request.kind) {
            Ok(reply) if reply.success => {
                let answer = match task.kind {
                    TaskKind::Upload => codec.read_upload(&reply.data),
                    _ => UploadAnswer::default(),
                };
                if let Some(why) = &answer.refused {
                    return self.park_task(task, 0, why, reply.tracking_id.as_deref(), report);
                }
                // The file's URL and hash the answer gives are the server's:
                // stored on the record with no pending change.
                let mut changes = Changes::default();
                self.ctx.db.write(|tx| {
                    tx.delete_task(task.id, false)?;
                    if answer.fields.is_empty() {
                        return Ok(());
                    }
                    if let Some(row) = tasks::upload_record(tx, task)? {
                        if tx.store_server_fields(row.local_id, &answer.fields)? {
                            if let Spec::Upload { collection, .. } = &task.spec {
                                changes.note(
                                    collection,
                                    row.server_id,
                                    row.client_id,
                                    ChangeOrigin::Sync,
                                );
                            }
                        }
                    }
                    Ok(())
                })?;
                self.ctx.events.emit_changes(&changes.into_events());
                match task.kind {
                    TaskKind::Upload => report.uploaded += 1,
                    _ => report.disputes_sent += 1,
                }
                Ok(())
            }
            Ok(reply) => {
                let message = match reply.message.trim() {
                    "" => "the server refused it without a reason",
                    m => m,
                };
                self.park_task(task, 0, message, reply.tracking_id.as_deref(), report)
            }
            Err(Error::Rejected {
                code,
                message,
                tracking_id,
                ..
            }) => self.park_task(task, code, &message, tracking_id.as_deref(), report),
            Err(Error::Conflict {
                message,
                tracking_id,
                ..
            }) => self.park_task(task, 2002, &message, tracking_id.as_deref(), report),
            Err(Error::InDoubt { tracking_id, .. }) => {
                self.park_task(task, 0, DISPUTE_IN_DOUBT, tracking_id.as_deref(), report)
            }
            Err(Error::Protocol {
                message,
                tracking_id,
                ..
            }) => self.park_task(task, 0, &message, tracking_id.as_deref(), report),
            Err(e) => {
                // Not sent, or safe to send again: it stays queued.
                self.ctx
                    .db
                    .write(|tx| tx.mark_task_failed(task.id, &e.to_string()))?;
                Err(e)
            }
        }
    }

    /// Parks a task in a new dead letter with the server's words.
    fn park_task(
        &self,
        task: &TaskRow,
        code: i64,
        message: &str,
        tracking_id: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let entity = match &task.spec {
            Spec::Upload { collection, .. } | Spec::Dispute { collection, .. } => {
                collection.as_str()
            }
            Spec::OrderDispute { .. } => "orders",
        };
        self.ctx.db.write(|tx| {
            let id = tx.park(&[], code, message, Some(entity), None, tracking_id)?;
            tx.park_task(task.id, id, message)
        })?;
        self.ctx.logger.log(LogLevel::Warn, "rowsync::tasks", || {
            format!(
                "parked {} {} in the dead-letter queue: code {code}, {message}",
                task.kind.as_str(),
                task.id
            )
        });
        report.tasks_parked += 1;
        Ok(())
    }
}
