//! One sync, top to bottom, and the one driver that runs its steps: pull
//! every wanted collection that is due, then push the outbox in bounded
//! batches, then send the task queue. Each step (`pull.rs`, `push.rs`,
//! `confirm.rs`, `resolve.rs`, `reconcile.rs`, `tasks.rs`) does its part and
//! returns what should happen next (a [`Next`], an [`Answer`], a
//! [`Refusal`]); only this file sequences them, so no step calls another.
//! A sync of chosen collections ([`Scope::Only`]) pulls them and stops
//! there. The driver times the phases; the context's meter counts the calls.
//!
//! A sync works with a [`Context`] (`context.rs`) taken once when it
//! starts; it never sees the engine. The bytes of every request and answer belong to the codec; this
//! file never reads a JSON key (DESIGN.md invariants 2, 3, 11 and 12).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::log::LogLevel;
use crate::report::{millis, SyncReport};
use crate::sync::confirm::{self, Settled};
use crate::sync::context::Context;
use crate::sync::pull;
use crate::sync::push::{self, Answer, Group, Refusal};
use crate::sync::reconcile;
use crate::sync::resolve;
use crate::sync::tasks;

/// Batches planned at a time, so a huge outbox is not read into memory whole.
const PLAN_BATCHES: usize = 8;
/// Conflict rounds per sync before a change that keeps conflicting is parked.
const MAX_CONFLICT_ROUNDS: usize = 3;
/// Saves per sync whose answer may be lost before the sync gives up (each
/// one costs a reconciling pull).
const MAX_DOUBT_ROUNDS: usize = 3;

/// What the driver does after a step.
#[derive(Debug)]
pub(crate) enum Next {
    /// Go on with the next batch.
    Done,
    /// Something was parked, resolved or reconciled: plan again.
    Replan,
    /// Creates of these collections are in doubt: pull them (whatever was
    /// pulled before), then reconcile them, then plan again (invariant 11).
    Reconcile(Vec<String>),
    /// Pull these collections again (their conflicts resolve on apply),
    /// then plan again.
    Refetch(Vec<String>),
}

/// What a sync pulls, and whether it pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The wanted collections that are due; then the push and the tasks.
    Due,
    /// Every wanted collection, whatever its schedule (`sync_all`); then
    /// the push and the tasks.
    Everything,
    /// These collections now, whatever their schedule, and nothing else:
    /// no push, no tasks (`sync_collections`, its link collections
    /// already added).
    Only(Vec<String>),
}

/// One sync's driver and its state.
pub(crate) struct Session<'s> {
    ctx: Context<'s>,
    /// What the sync pulls, and whether it pushes.
    scope: Scope,
    conflict_rounds: usize,
    doubt_rounds: usize,
    /// Collections pulled whole in this sync (their in-doubt creates need
    /// no second pull).
    pulled: HashSet<String>,
    /// In-doubt creates a pull showed missing in this sync: a second
    /// "already registered" for one of them parks it.
    reconciled: HashMap<i64, u32>,
}

impl<'s> Session<'s> {
    pub(crate) fn new(ctx: Context<'s>, scope: Scope) -> Self {
        Session {
            ctx,
            scope,
            conflict_rounds: 0,
            doubt_rounds: 0,
            pulled: HashSet::new(),
            reconciled: HashMap::new(),
        }
    }

    /// Pull, then push, then the task queue; the calls' figures go into
    /// the report's metrics, whatever the outcome.
    pub(crate) fn run(&mut self, report: &mut SyncReport) -> Result<()> {
        let out = self.steps(report);
        self.ctx.meter.add_to(&mut report.metrics);
        out
    }

    /// A page the engine cannot read will not read better next time: the
    /// outbox must not wait behind it, so the push runs anyway and the
    /// pull's error is reported.
    fn steps(&mut self, report: &mut SyncReport) -> Result<()> {
        let pulled = self.pull_due(report);
        if matches!(self.scope, Scope::Only(_)) {
            return pulled;
        }
        match pulled {
            // Uploads and disputes after the push: an upload's record gets
            // its server id there.
            Ok(()) => self
                .push_timed(report)
                .and_then(|()| {
                    let started = Instant::now();
                    let sent = tasks::send(&self.ctx, report);
                    report.metrics.phases.tasks_ms += millis(started.elapsed());
                    sent
                })
                .and_then(|()| self.another_user()),
            Err(pull_error @ Error::Protocol { .. }) => {
                if let Err(e) = self.push_timed(report) {
                    self.ctx.logger.log(LogLevel::Warn, "rowsync::push", || {
                        format!("push after a failed pull: {e}")
                    });
                }
                Err(pull_error)
            }
            Err(e) => Err(e),
        }
    }

    /// After this user's changes went out: another user's changes left
    /// behind end the sync with a typed error (invariant 16).
    fn another_user(&self) -> Result<()> {
        let user = self.ctx.client.username();
        match self
            .ctx
            .db
            .read(|c| crate::store::handover::another_users(c, &user))?
        {
            Some((user, count)) => Err(Error::PendingChangesOfAnotherUser { user, count }),
            None => Ok(()),
        }
    }

    // ----- pull -----------------------------------------------------------------

    /// The sync's own pull: the wanted collections that are due, with the
    /// write-ahead log's checkpoints deferred to its end.
    fn pull_due(&mut self, report: &mut SyncReport) -> Result<()> {
        let started = Instant::now();
        let wal = self.ctx.db.pulling()?;
        let before = report.applied();
        let which = match &self.scope {
            Scope::Due => pull::Which::Due,
            Scope::Everything => pull::Which::Everything,
            Scope::Only(chosen) => pull::Which::Chosen(chosen),
        };
        let out = pull::due(&self.ctx, which, report);
        report.metrics.phases.pull_ms += millis(started.elapsed());
        self.ctx
            .db
            .pulled(wal, report.applied() - before >= pull::BIG_PULL_RECORDS)?;
        self.pulled.extend(out?);
        Ok(())
    }

    /// Pulls `collections` now, whatever their schedule.
    fn pull(&mut self, collections: &[String], report: &mut SyncReport) -> Result<()> {
        let started = Instant::now();
        let out = pull::only(&self.ctx, collections, report);
        report.metrics.phases.pull_ms += millis(started.elapsed());
        out?;
        self.pulled.extend(collections.iter().cloned());
        Ok(())
    }

    // ----- push -----------------------------------------------------------------

    /// [`Session::push`], timed: the pulls it asks for count as pull time.
    fn push_timed(&mut self, report: &mut SyncReport) -> Result<()> {
        let started = Instant::now();
        let pulling = report.metrics.phases.pull_ms;
        let out = self.push(report);
        let pulled = report.metrics.phases.pull_ms - pulling;
        report.metrics.phases.push_ms += millis(started.elapsed()).saturating_sub(pulled);
        out
    }

    /// Pushes the outbox, isolating what the server refuses.
    fn push(&mut self, report: &mut SyncReport) -> Result<()> {
        if !self.ctx.codec.idempotent_save() {
            self.reconcile(None, report)?;
        }
        let batch_size = self.ctx.settings.batch_size.max(1);
        let user = self.ctx.client.username();
        loop {
            let groups = self.ctx.db.read(|conn| {
                push::plan(
                    conn,
                    &self.ctx.catalogue,
                    &user,
                    batch_size.saturating_mul(PLAN_BATCHES),
                )
            })?;
            if groups.is_empty() {
                return Ok(());
            }
            // Each round must confirm, park, resolve or reconcile something;
            // a server that answers success without saying what it saved
            // would otherwise have the same changes sent forever.
            let progress =
                |s: &Self, r: &SyncReport| (r.pushed, r.parked, s.conflict_rounds, s.doubt_rounds);
            let before = progress(self, report);
            let max_per_collection = self.ctx.settings.max_per_collection.max(1);
            // Batches to send, first at the front; a refused batch comes
            // back split in two, to find its culprit.
            let mut queue: VecDeque<Vec<Group>> =
                push::pack(groups, batch_size, max_per_collection).into();
            while let Some(batch) = queue.pop_front() {
                match self.send(batch, report)? {
                    Step::Next(Next::Done) => {}
                    Step::Next(next) => {
                        self.follow(next, report)?;
                        break;
                    }
                    Step::Split(left, right) => {
                        queue.push_front(right);
                        queue.push_front(left);
                    }
                }
            }
            if progress(self, report) == before {
                return Ok(());
            }
        }
    }

    /// Sends one batch and hands its answer to the step it calls for.
    fn send(&mut self, batch: Vec<Group>, report: &mut SyncReport) -> Result<Step> {
        let answer = push::send(&self.ctx, &batch, report)?;
        let ctx = &self.ctx;
        Ok(match answer {
            Answer::Outcomes {
                outcomes,
                tracking_id,
            } => {
                let settled = confirm::settle(
                    ctx,
                    &batch,
                    &outcomes,
                    tracking_id.as_deref(),
                    &self.reconciled,
                    report,
                )?;
                Step::Next(self.settled(settled, tracking_id)?)
            }
            Answer::Refused {
                code,
                message,
                errors,
                tracking_id,
            } => match push::refusal(
                ctx,
                batch,
                code,
                &message,
                &errors,
                tracking_id.as_deref(),
                report,
            )? {
                Refusal::Parked => Step::Next(Next::Replan),
                Refusal::Split(left, right) => Step::Split(left, right),
            },
            Answer::Lost(error) => Step::Next(self.lost(&batch, error)?),
            Answer::Conflict {
                message,
                errors,
                tracking_id,
            } => {
                self.conflict_rounds += 1;
                if self.conflict_rounds > MAX_CONFLICT_ROUNDS {
                    push::park_named(
                        ctx,
                        &batch,
                        &errors,
                        2002,
                        &message,
                        tracking_id.as_deref(),
                        report,
                    )?;
                    Step::Next(Next::Replan)
                } else {
                    Step::Next(Next::Refetch(resolve::rejected(
                        ctx, &batch, &errors, report,
                    )?))
                }
            }
        })
    }

    /// What settled outcomes call for: creates in doubt are reconciled.
    fn settled(&mut self, settled: Settled, tracking_id: Option<String>) -> Result<Next> {
        if !settled.doubt.is_empty() {
            self.doubt_rounds += 1;
            if self.doubt_rounds > MAX_DOUBT_ROUNDS {
                return Err(Error::InDoubt {
                    message: "the server kept answering saves without saying what it saved".into(),
                    tracking_id,
                });
            }
            return Ok(Next::Reconcile(settled.doubt));
        }
        Ok(if settled.parked {
            Next::Replan
        } else {
            Next::Done
        })
    }

    /// A save whose answer never came whole: its creates stay in doubt
    /// (their sent mark is durable), and a pull reconciles them now.
    fn lost(&mut self, batch: &[Group], error: Error) -> Result<Next> {
        self.ctx.logger.log(LogLevel::Warn, "rowsync::push", || {
            format!("a save's answer was lost; its creates are in doubt: {error}")
        });
        self.doubt_rounds += 1;
        if self.doubt_rounds > MAX_DOUBT_ROUNDS {
            return Err(error);
        }
        let collections = reconcile::creating(batch);
        if collections.is_empty() {
            return Ok(Next::Replan);
        }
        Ok(Next::Reconcile(collections))
    }

    /// Runs what a step asked for.
    fn follow(&mut self, next: Next, report: &mut SyncReport) -> Result<()> {
        match next {
            Next::Done | Next::Replan => Ok(()),
            Next::Reconcile(collections) => {
                // The pull must follow the save, whatever was pulled before.
                for c in &collections {
                    self.pulled.remove(c);
                }
                self.reconcile(Some(&collections), report)
            }
            Next::Refetch(collections) if collections.is_empty() => Ok(()),
            Next::Refetch(collections) => self.pull(&collections, report),
        }
    }

    /// Reconciles the creates in doubt (of `only`, or all): pulls their
    /// collections, then marks the ones still missing as safe to send again
    /// (invariant 11).
    fn reconcile(&mut self, only: Option<&[String]>, report: &mut SyncReport) -> Result<()> {
        let doubt = reconcile::in_doubt(&self.ctx, only, &self.pulled)?;
        if doubt.is_empty() {
            return Ok(());
        }
        if !doubt.to_pull.is_empty() {
            self.ctx.logger.log(LogLevel::Info, "rowsync::push", || {
                format!(
                    "{} create(s) in doubt: pulling {:?} before sending them again",
                    doubt.len(),
                    doubt.to_pull
                )
            });
            let to_pull = doubt.to_pull.clone();
            self.pull(&to_pull, report)?;
        }
        reconcile::settle(&self.ctx, &doubt, &mut self.reconciled)
    }
}

/// What sending a batch led to.
enum Step {
    /// Go on as [`Next`] says.
    Next(Next),
    /// Send these halves, in order, to find the culprit.
    Split(Vec<Group>, Vec<Group>),
}
