//! The documented dialect (`docs/PROTOCOL.md`): `LoginV2`, `GetAllDataV2`
//! with `<collection>RowVersion` keys and `{rowVersion, hasMore, records}`
//! entries, `SaveAllDataV2` that is all-or-nothing and answers the saved
//! records' ids. camelCase on both sides.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{check_pulled, protocol, PulledCollection, SaveAnswer, SaveOutcome};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::Result;
use crate::record::{self, JsonKey};
use crate::sync::push::Change;

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(rename = "rowVersion", default)]
    row_version: Option<i64>,
    #[serde(rename = "hasMore", default)]
    has_more: Option<bool>,
    #[serde(borrow, default)]
    records: Option<Vec<&'a RawValue>>,
}

/// Reads `data` in one pass: the entries of wanted collections are parsed
/// as they come, everything else is skipped. Notes which collection failed.
struct PageSeed<'c, 'f> {
    catalogue: &'c Catalogue,
    wanted: &'c [String],
    failed: &'f std::cell::RefCell<Option<String>>,
}

impl<'de, 'c> Visitor<'de> for PageSeed<'c, '_> {
    type Value = Vec<(&'c CollectionDef, RawEntry<'de>)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of collections")
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(JsonKey(key)) = map.next_key::<JsonKey<'de>>()? {
            let def = self
                .catalogue
                .get(&key)
                .filter(|d| self.wanted.contains(&d.name));
            match def {
                Some(def) => {
                    *self.failed.borrow_mut() = Some(def.name.clone());
                    if let Some(entry) = map.next_value::<Option<RawEntry<'de>>>()? {
                        out.push((def, entry));
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

impl<'de, 'c> DeserializeSeed<'de> for PageSeed<'c, '_> {
    type Value = Vec<(&'c CollectionDef, RawEntry<'de>)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Parses and validates a pull answer's `data`: `{ "<collection>":
/// { "rowVersion", "hasMore", "records": [...] } }`, read in one pass.
pub(crate) fn parse_pull<'a>(
    catalogue: &'a Catalogue,
    wanted: &'a [String],
    data: &'a str,
    tracking_id: Option<&str>,
) -> Result<Vec<PulledCollection<'a>>> {
    let protocol =
        |collection: Option<&str>, message: String| protocol(collection, message, tracking_id);
    let failed = std::cell::RefCell::new(None);
    let seed = PageSeed {
        catalogue,
        wanted,
        failed: &failed,
    };
    let mut de = serde_json::Deserializer::from_str(data);
    let raw = seed.deserialize(&mut de).map_err(|e| {
        let collection = failed.borrow().clone();
        let what = match &collection {
            Some(_) => "bad collection entry",
            None => "`data` is not an object of collections",
        };
        protocol(collection.as_deref(), format!("{what}: {e}"))
    })?;
    let mut out = Vec::with_capacity(raw.len());
    for (def, entry) in raw {
        let mut records = Vec::with_capacity(entry.records.as_ref().map_or(0, Vec::len));
        for (i, rec) in entry.records.iter().flatten().enumerate() {
            let text = rec.get();
            let meta = record::scan(def, text)
                .map_err(|m| protocol(Some(&def.name), format!("record {i}: {m}")))?;
            check_pulled(def, i, &meta, tracking_id)?;
            records.push((Cow::Borrowed(text), meta));
        }
        // An entry with no records list moves no checkpoint: a checkpoint
        // never passes records the engine did not receive.
        let row_version = entry.records.as_ref().and(entry.row_version);
        out.push(PulledCollection {
            def,
            row_version,
            has_more: entry.has_more.unwrap_or(false),
            records,
        });
    }
    Ok(out)
}

/// The records of `changes` grouped by collection, in catalogue order.
pub(crate) fn by_collection<'c>(
    catalogue: &'c Catalogue,
    changes: &[&'c Change],
) -> Vec<(&'c CollectionDef, Vec<&'c Change>)> {
    let mut by_coll: HashMap<&str, Vec<&Change>> = HashMap::new();
    for c in changes {
        by_coll.entry(c.collection.as_str()).or_default().push(c);
    }
    catalogue
        .iter()
        .filter_map(|def| by_coll.remove(def.name.as_str()).map(|list| (def, list)))
        .collect()
}

/// `{ "<collection>": [record, ...], ... }`, records as the outbox holds
/// them (null server id and rowVersion on a create).
pub(crate) fn save_body(catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256 * changes.len());
    out.push(b'{');
    for (i, (def, list)) in by_collection(catalogue, changes).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &def.name)?;
        out.push(b':');
        let records: Vec<&Map<String, Value>> = list.iter().map(|c| &c.payload).collect();
        serde_json::to_writer(&mut out, &records)?;
    }
    out.push(b'}');
    Ok(out)
}

/// A success answer lists the saved records' ids per collection:
/// `{ "orders": [ { "orderClientId", "orderId", "rowVersion" } ] }`. A
/// change the answer does not list stays `Unknown`.
pub(crate) fn parse_save(
    catalogue: &Catalogue,
    changes: &[&Change],
    data: &RawValue,
    tracking_id: Option<&str>,
) -> Result<SaveAnswer> {
    let fail = |collection: &str, message: String| protocol(Some(collection), message, tracking_id);
    let map: HashMap<String, Value> = match serde_json::from_str::<Value>(data.get())? {
        Value::Object(m) => m.into_iter().collect(),
        Value::Null => HashMap::new(),
        _ => return Err(fail("", "save answer `data` is not an object".into())),
    };
    // The batch's changes by (collection, client id) and (collection, server
    // id), built once: a save answer lists up to a whole batch.
    let mut by_client: HashMap<(&str, i64), usize> = HashMap::new();
    let mut by_server: HashMap<(&str, i64), usize> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if let Some(cid) = c.client_id {
            by_client.entry((c.collection.as_str(), cid)).or_insert(i);
        }
        if let Some(sid) = c.server_id {
            by_server.entry((c.collection.as_str(), sid)).or_insert(i);
        }
    }
    let mut outcomes = vec![SaveOutcome::Unknown; changes.len()];
    for def in catalogue.iter() {
        let Some(list) = map.get(&def.name) else {
            continue;
        };
        let Some(list) = list.as_array() else {
            return Err(fail(&def.name, "saved records are not a list".into()));
        };
        for (i, entry) in list.iter().enumerate() {
            let Some(obj) = entry.as_object() else {
                return Err(fail(
                    &def.name,
                    format!("saved record {i} is not an object"),
                ));
            };
            let int = |k: &str| match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                    fail(
                        &def.name,
                        format!("saved record {i}: `{k}` is not an integer"),
                    )
                }),
            };
            let (sid, cid, rv) = (
                int(&def.id_field)?,
                int(&def.client_id_field)?,
                int("rowVersion")?,
            );
            let (Some(sid), Some(rv)) = (sid, rv) else {
                return Err(fail(
                    &def.name,
                    format!("saved record {i} lacks `{}` or `rowVersion`", def.id_field),
                ));
            };
            if sid <= 0 || rv < 0 {
                return Err(fail(
                    &def.name,
                    format!("saved record {i}: a negative id or `rowVersion`"),
                ));
            }
            let at = cid
                .filter(|&c| c != 0)
                .and_then(|c| by_client.get(&(def.name.as_str(), c)))
                .or_else(|| by_server.get(&(def.name.as_str(), sid)));
            if let Some(&at) = at {
                outcomes[at] = SaveOutcome::Saved {
                    server_id: Some(sid),
                    row_version: Some(rv),
                };
            }
        }
    }
    Ok(SaveAnswer { outcomes })
}
