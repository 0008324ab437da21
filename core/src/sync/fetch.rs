//! Fetching pull pages, one after the other: each request asks the wanted
//! collections from their checkpoints, the answer is parsed and validated
//! whole by the codec, and the codec's pager says what to ask next. The
//! checkpoints each page moves to (those the apply will store: the largest
//! of the old one and the page's) are kept here, so the next request can
//! leave before the page is applied. A page comes out detached from its
//! parse: its records are spans of its own text.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::api::client::{CallKind, Outgoing};
use crate::api::dialect::{parse_pull_sorted, NextAsk, Pager, PullAsk, PulledCollection};
use crate::api::envelope::span_within;
use crate::calls::CallRecord;
use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::record::Meta;
use crate::sync::context::Context;

/// A fetched page with the calls it took (for the sync log), or the error
/// that ended the pull.
pub(crate) type Fetch = (Vec<CallRecord>, Result<Fetched>);

/// A pull page, fetched and parsed, ready to apply.
pub(crate) struct Fetched {
    /// The page's text; the records are spans of it.
    pub(crate) page: String,
    pub(crate) entries: Vec<OwnedEntry>,
    /// The page's number in this pull.
    pub(crate) number: u64,
    /// Collections asked for again after it.
    pub(crate) asking_next: usize,
    /// An error found in the page that ends the pull once it is applied.
    pub(crate) then: Result<()>,
}

/// A parsed collection of a page, detached from the page's borrow.
pub(crate) struct OwnedEntry {
    pub(crate) name: String,
    pub(crate) records: Vec<(RecordText, Meta)>,
    pub(crate) row_version: Option<i64>,
    pub(crate) has_more: bool,
}

/// A record's JSON text: a span of the page, or text of its own.
pub(crate) enum RecordText {
    Span(usize, usize),
    Own(String),
}

impl Fetched {
    /// The page's collections, borrowing their records from its text, as
    /// the apply takes them.
    pub(crate) fn collections<'a>(
        &'a self,
        catalogue: &'a Catalogue,
    ) -> Result<Vec<PulledCollection<'a>>> {
        let mut pulled = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let records = e
                .records
                .iter()
                .map(|(text, meta)| {
                    let text = match text {
                        RecordText::Span(a, b) => {
                            Cow::Borrowed(self.page.get(*a..*b).unwrap_or_default())
                        }
                        RecordText::Own(t) => Cow::Borrowed(t.as_str()),
                    };
                    (text, meta.clone())
                })
                .collect();
            pulled.push(PulledCollection {
                def: catalogue.require(&e.name)?,
                records,
                row_version: e.row_version,
                has_more: e.has_more,
            });
        }
        Ok(pulled)
    }

    /// Records in the page.
    pub(crate) fn record_count(&self) -> usize {
        self.entries.iter().map(|e| e.records.len()).sum()
    }
}

/// Fetches and parses the pages of one pull.
pub(crate) struct Fetcher<'c, 's> {
    ctx: &'c Context<'s>,
    pager: Box<dyn Pager>,
    max_pages: u64,
    pages: u64,
    /// Collections to ask for next; empty when the pull is over.
    wanted: Vec<String>,
    /// The checkpoints the next request starts from.
    before: HashMap<String, i64>,
}

impl<'c, 's> Fetcher<'c, 's> {
    /// A pull of `wanted`, from the checkpoints `before`, paged by `pager`.
    pub(crate) fn new(
        ctx: &'c Context<'s>,
        pager: Box<dyn Pager>,
        wanted: Vec<String>,
        before: HashMap<String, i64>,
    ) -> Self {
        Fetcher {
            ctx,
            pager,
            max_pages: u64::from(ctx.settings.max_pull_pages.max(1)),
            pages: 0,
            wanted,
            before,
        }
    }

    /// True when the pager learned that the server's lower bound is
    /// inclusive.
    pub(crate) fn learned_inclusive_bound(&self) -> bool {
        self.pager.learned_inclusive_bound()
    }

    /// The next page, or `None` when the pull is over. After an error the
    /// pull is over.
    pub(crate) fn next_page(&mut self) -> Option<Fetch> {
        if self.wanted.is_empty() {
            return None;
        }
        let mut calls = Vec::new();
        let result = self.fetch(&mut calls);
        if result.is_err() {
            self.wanted.clear();
        }
        Some((calls, result))
    }

    fn checkpoint(&self, name: &str) -> i64 {
        self.before.get(name).copied().unwrap_or(0)
    }

    fn fetch(&mut self, calls: &mut Vec<CallRecord>) -> Result<Fetched> {
        if self.pages >= self.max_pages {
            return Err(Error::Protocol {
                collection: None,
                message: format!(
                    "the server kept sending new pages ({}); the pull stopped at its limit",
                    self.pages
                ),
                tracking_id: None,
            });
        }
        let ctx = self.ctx;
        let cat = &ctx.catalogue;
        let body = {
            let mut asked = Vec::with_capacity(self.wanted.len());
            for name in &self.wanted {
                asked.push((
                    cat.require(name)?,
                    self.pager.ask_from(self.checkpoint(name)),
                ));
            }
            ctx.codec.pull_body(&PullAsk {
                wanted: &asked,
                page_size: self.pager.page_size(),
                order_types: &ctx.settings.order_types,
            })?
        };
        let out = Outgoing {
            reuse_buffer: true,
            progress: None,
            ..Outgoing::json(&body)
        };
        let reply =
            ctx.client
                .call_with(&ctx.endpoints.pull, &out, CallKind::Idempotent, &mut |c| {
                    ctx.log_call(&c);
                    calls.push(c)
                })?;
        self.pages += 1;
        let tracking_id = reply.tracking_id.clone();
        let page = ctx.codec.page_text(reply.data);
        let mut entries =
            parse_pull_sorted(ctx.codec, cat, &self.wanted, &page, tracking_id.as_deref())?;
        let before = &self.before;
        let checkpoint = |name: &str| before.get(name).copied().unwrap_or(0);
        let (next, then) = match self.pager.next(
            &mut entries,
            &checkpoint,
            &self.wanted,
            tracking_id.as_deref(),
        ) {
            NextAsk::Again(next) => (next, Ok(())),
            NextAsk::Done => (Vec::new(), Ok(())),
            NextAsk::Fail(e) => (Vec::new(), Err(e)),
        };
        let owned: Vec<OwnedEntry> = entries
            .into_iter()
            .map(|e| {
                if let Some(cp) = e.checkpoint() {
                    let at = self.before.entry(e.def.name.clone()).or_insert(0);
                    *at = (*at).max(cp);
                }
                OwnedEntry {
                    name: e.def.name.clone(),
                    records: e
                        .records
                        .into_iter()
                        .map(|(text, meta)| {
                            let text = match text {
                                Cow::Borrowed(t) => {
                                    match span_within(page.as_bytes(), t.as_bytes()) {
                                        Some(span) => RecordText::Span(span.start, span.end),
                                        None => RecordText::Own(t.to_string()),
                                    }
                                }
                                Cow::Owned(t) => RecordText::Own(t),
                            };
                            (text, meta)
                        })
                        .collect(),
                    row_version: e.row_version,
                    has_more: e.has_more,
                }
            })
            .collect();
        self.wanted = next;
        Ok(Fetched {
            page,
            entries: owned,
            number: self.pages,
            asking_next: self.wanted.len(),
            then,
        })
    }
}
