//! The real server's pull: `Data.Objects` with one array per collection
//! (keys in any case, `null` for none), read in one pass, and its paging
//! rule.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::api::dialect::codec::{check_pulled, protocol, NextAsk, Pager, PulledCollection};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::Result;
use crate::record::{self, JsonKey};

type RawCollections<'de, 'c> = Vec<(&'c CollectionDef, Vec<&'de RawValue>)>;

/// Reads `Data` in one pass: finds `Objects` (any case) and, in it, the
/// arrays of the wanted collections (any case); skips the rest.
struct DataSeed<'c, 'f> {
    wanted: &'f HashMap<String, &'c CollectionDef>,
    failed: &'f std::cell::RefCell<Option<String>>,
}

impl<'de, 'c> Visitor<'de> for DataSeed<'c, '_> {
    type Value = RawCollections<'de, 'c>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with `Objects`")
    }

    // `Data: null` or `Data` without `Objects` is no answer to a pull: a
    // malformed one, not an empty one (an empty one has `Objects`).
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = None;
        while let Some(JsonKey(key)) = map.next_key::<JsonKey<'de>>()? {
            if key.eq_ignore_ascii_case("objects") && out.is_none() {
                out = Some(map.next_value_seed(ObjectsSeed {
                    wanted: self.wanted,
                    failed: self.failed,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        out.ok_or_else(|| serde::de::Error::custom("no `Objects`"))
    }
}

impl<'de, 'c> DeserializeSeed<'de> for DataSeed<'c, '_> {
    type Value = RawCollections<'de, 'c>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

struct ObjectsSeed<'c, 'f> {
    wanted: &'f HashMap<String, &'c CollectionDef>,
    failed: &'f std::cell::RefCell<Option<String>>,
}

impl<'de, 'c> Visitor<'de> for ObjectsSeed<'c, '_> {
    type Value = RawCollections<'de, 'c>;

    // `Objects: null` is malformed, as a missing `Objects` is.
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of collections")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(JsonKey(key)) = map.next_key::<JsonKey<'de>>()? {
            match self.wanted.get(&key.to_ascii_lowercase()) {
                Some(def) => {
                    *self.failed.borrow_mut() = Some(def.name.clone());
                    if let Some(records) = map.next_value::<Option<Vec<&'de RawValue>>>()? {
                        out.push((*def, records));
                    }
                    *self.failed.borrow_mut() = None;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

impl<'de, 'c> DeserializeSeed<'de> for ObjectsSeed<'c, '_> {
    type Value = RawCollections<'de, 'c>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Parses and validates `Data` of a `GetAllData` answer: `{ "Objects": {
/// "<Collection>": [records] | null } }`. There is no per-collection
/// checkpoint: the checkpoint is the largest `RowVersion` received.
pub(super) fn parse_pull<'a>(
    catalogue: &'a Catalogue,
    wanted: &'a [String],
    data: &'a str,
    tracking_id: Option<&str>,
) -> Result<Vec<PulledCollection<'a>>> {
    let by_name: HashMap<String, &CollectionDef> = wanted
        .iter()
        .filter_map(|w| catalogue.get(w))
        .map(|d| (d.name.to_ascii_lowercase(), d))
        .collect();
    let failed = std::cell::RefCell::new(None);
    let seed = DataSeed {
        wanted: &by_name,
        failed: &failed,
    };
    let mut de = serde_json::Deserializer::from_str(data);
    let raw = seed.deserialize(&mut de).map_err(|e| {
        let collection = failed.borrow().clone();
        let what = match &collection {
            Some(_) => "bad collection entry",
            None => "`Data` is not an object holding `Objects`",
        };
        protocol(collection.as_deref(), format!("{what}: {e}"), tracking_id)
    })?;
    let mut out: Vec<PulledCollection<'a>> = Vec::with_capacity(raw.len());
    for (def, list) in raw {
        let mut records = Vec::with_capacity(list.len());
        let mut memo = record::KeyMemo::new();
        for (i, rec) in list.into_iter().enumerate() {
            let text = rec.get();
            let mut meta = record::scan_with(def, text, &mut memo)
                .map_err(|m| protocol(Some(&def.name), format!("record {i}: {m}"), tracking_id))?;
            // The Swagger's `OrderModel` has no `RowVersion`: a record sent
            // without one (or with null) is taken at version 0 rather than refusing the
            // whole answer (which would stop every pull). It is applied (the
            // server's copy replaces an unchanged local one), but it moves
            // no checkpoint and is no news, so a pull never loops on it.
            if meta.row_version.is_none() {
                meta.row_version = Some(0);
                meta.versionless = true;
            }
            check_pulled(def, i, &meta, tracking_id)?;
            records.push((Cow::Borrowed(text), meta));
        }
        match out.iter_mut().find(|c| std::ptr::eq(c.def, def)) {
            Some(existing) => existing.records.extend(records),
            None => out.push(PulledCollection {
                def,
                records,
                row_version: None,
                has_more: false,
            }),
        }
    }
    Ok(out)
}

/// The real server's paging. It has no `hasMore`, and its page cap may
/// count per collection, over the whole answer, or be its own: a
/// collection can come back empty only because others used up the page. So
/// every wanted collection is asked again, each from its new checkpoint,
/// until an answer brings no record newer than its checkpoint for any of
/// them. That also ends against a server that ignores `pageSize`, or that
/// sends the record at the checkpoint again (an inclusive lower bound).
pub(crate) struct MahakPager {
    page_size: u32,
    /// The server's lower bound is known to be inclusive: requests ask from
    /// each checkpoint plus one, so the record at the checkpoint does not
    /// come back (as the vendor's own plugin does).
    inclusive: bool,
    /// `inclusive` was learned during this pull (to be stored).
    learned: bool,
    /// Collections whose records came without a version in a paged answer:
    /// no checkpoint pages past their first page, so they are asked once
    /// more, alone and unpaged, when the rest is done.
    unversioned: Vec<String>,
    /// The request under way is that last, unpaged one.
    unpaged: bool,
}

impl MahakPager {
    /// A pull of pages of `page_size` (0: unpaged); `inclusive` when the
    /// server's lower bound is known to be inclusive.
    pub(super) fn new(page_size: u32, inclusive: bool) -> Self {
        MahakPager {
            // The lower bound is probably inclusive: the record at the
            // checkpoint comes back, so a page of one would never move on.
            page_size: if page_size > 0 { page_size.max(2) } else { 0 },
            inclusive,
            learned: false,
            unversioned: Vec::new(),
            unpaged: false,
        }
    }
}

impl Pager for MahakPager {
    fn page_size(&self) -> u32 {
        if self.unpaged {
            0
        } else {
            self.page_size
        }
    }

    fn ask_from(&self, checkpoint: i64) -> i64 {
        match checkpoint {
            cp if cp > 0 && self.inclusive => cp.saturating_add(1),
            cp => cp,
        }
    }

    fn next(
        &mut self,
        entries: &mut Vec<PulledCollection<'_>>,
        checkpoint: &dyn Fn(&str) -> i64,
        asked: &[String],
        _tracking_id: Option<&str>,
    ) -> NextAsk {
        // An inclusive lower bound sends the record at the checkpoint again:
        // it was applied with the page that moved the checkpoint there, so
        // it is not news. Under a cap on the whole answer, such repeats can
        // fill it and leave out the news (see below).
        let mut repeats_seen = false;
        for e in entries.iter_mut() {
            let cp = checkpoint(&e.def.name);
            if cp > 0 {
                let had = e.records.len();
                e.records.retain(|(_, m)| m.row_version != Some(cp));
                repeats_seen |= e.records.len() < had && !self.inclusive;
            }
        }
        if repeats_seen {
            self.inclusive = true;
            self.learned = true;
        }
        if self.page_size > 0 && !self.unpaged {
            for e in entries.iter().filter(|e| e.has_versionless()) {
                if !self.unversioned.contains(&e.def.name) {
                    self.unversioned.push(e.def.name.clone());
                }
            }
        }
        // An answer of repeats alone may have been cut by a cap on the whole
        // answer before any news: ask again, now from the checkpoints plus
        // one. Version numbers are unique across the database (one
        // counter), so the repeat was the only record at its version, and
        // nothing is skipped.
        if repeats_seen
            || entries
                .iter()
                .any(|e| e.brings_news(checkpoint(&e.def.name)))
        {
            NextAsk::Again(asked.to_vec())
        } else if !self.unpaged && !self.unversioned.is_empty() {
            self.unpaged = true;
            NextAsk::Again(std::mem::take(&mut self.unversioned))
        } else {
            NextAsk::Done
        }
    }

    fn learned_inclusive_bound(&self) -> bool {
        self.learned
    }
}
