//! Reading a record's bookkeeping fields (server id, client id, rowVersion,
//! deleted, parent link) out of its JSON, and generating client ids. Pulled
//! records are scanned straight from their JSON text without building a value
//! tree, because the apply path of a million-record first sync runs through
//! here; the text itself is stored unchanged, so fields the engine does not
//! know survive a round trip.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalogue::CollectionDef;
use crate::error::{Error, Result};

/// An object key as read from JSON text: borrowed from the text when it
/// holds no escape, owned otherwise. (serde reads a plain `Cow<str>` into
/// an owned string every time: an allocation for each key of each record
/// of a pull.)
pub(crate) struct JsonKey<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonKey<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor).map(JsonKey)
    }
}

/// A record's bookkeeping fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `<key>Id`.
    pub server_id: Option<i64>,
    /// `<key>ClientId` (0 is kept as given but never used as an identity).
    pub client_id: Option<i64>,
    /// `rowVersion`.
    pub row_version: Option<i64>,
    /// `deleted`.
    pub deleted: bool,
    /// The parent's server id, for child collections.
    pub parent_id: Option<i64>,
    /// The parent's client id, for child collections.
    pub parent_client_id: Option<i64>,
    /// How deep the record's JSON nests (1 for a flat object), as `scan`
    /// found it; 0 when read from a value.
    pub depth: usize,
    /// Pulled without a `rowVersion` (mahak) and taken at version 0: its
    /// version says nothing about whether it is newer than the replica's.
    pub versionless: bool,
}

impl Meta {
    /// The client id when it can identify a record (non-null, non-zero).
    pub fn identity_client_id(&self) -> Option<i64> {
        self.client_id.filter(|&c| c != 0)
    }
}

#[derive(Clone, Copy)]
enum Slot {
    ServerId,
    ClientId,
    RowVersion,
    Deleted,
    ParentId,
    ParentClientId,
}

struct Scan<'a> {
    def: &'a CollectionDef,
    memo: &'a mut KeyMemo,
}

/// The keys, in order, of the last record scanned with this memo that had
/// no key twice. The records of one pulled collection nearly always have
/// the same keys in the same order, so a record whose keys match the memo
/// one by one has no key twice either, and the check costs one comparison
/// of bytes per key; a record that departs from it is checked with a
/// [`KeySet`] and, when it has no key twice, becomes the memo. The memo
/// only ever holds a sequence with no key twice.
#[derive(Default)]
pub struct KeyMemo {
    text: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyMemo {
    /// A memo that matches no record yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = match i {
            0 => 0,
            _ => *self.ends.get(i - 1)?,
        };
        self.text.get(start..end)
    }

    fn truncate(&mut self, n: usize) {
        self.ends.truncate(n);
        self.text.truncate(self.ends.last().copied().unwrap_or(0));
    }

    fn push(&mut self, key: &[u8]) {
        self.text.extend_from_slice(key);
        self.ends.push(self.text.len());
    }

    fn clear(&mut self) {
        self.ends.clear();
        self.text.clear();
    }
}

/// Which keys of one record were seen: as long as they follow the memo,
/// nothing is noted; from the first key that departs from it, every key
/// goes through a [`KeySet`] and onto the memo.
struct SeenKeys<'m> {
    memo: &'m mut KeyMemo,
    /// How many keys followed the memo, and where the last of them ends in
    /// its text.
    matched: usize,
    matched_end: usize,
    set: Option<KeySet>,
}

impl<'m> SeenKeys<'m> {
    fn new(memo: &'m mut KeyMemo) -> Self {
        SeenKeys {
            memo,
            matched: 0,
            matched_end: 0,
            set: None,
        }
    }

    /// Notes `key`; false when this record gave it before. The path of a
    /// key that follows the memo is kept apart from the rest, which is cold.
    #[inline]
    fn insert(&mut self, key: &[u8]) -> bool {
        if self.set.is_none() {
            if let Some(&end) = self.memo.ends.get(self.matched) {
                if let Some(memo) = self.memo.text.get(self.matched_end..end) {
                    if same_bytes(memo, key) {
                        self.matched += 1;
                        self.matched_end = end;
                        return true;
                    }
                }
            }
        }
        self.insert_departing(key)
    }

    #[cold]
    #[inline(never)]
    fn insert_departing(&mut self, key: &[u8]) -> bool {
        let set = match &mut self.set {
            Some(set) => set,
            None => {
                // The record departs from the memo here: the keys before
                // are the memo's first ones, which are all distinct.
                self.memo.truncate(self.matched);
                let mut set = KeySet::new();
                for i in 0..self.matched {
                    if let Some(k) = self.memo.key(i) {
                        set.insert(k);
                    }
                }
                self.set.insert(set)
            }
        };
        let fresh = set.insert(key);
        if fresh {
            self.memo.push(key);
        } else {
            // A record with a key twice never becomes the memo.
            self.memo.clear();
        }
        fresh
    }
}

/// `a == b`, without a call to `memcmp` for keys of 8 to 16 bytes (most
/// field names): two overlapping 8-byte loads each.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let word = |s: &[u8], at: usize| {
            s.get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map(u64::from_ne_bytes)
        };
        word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
    } else {
        a == b
    }
}

/// The keys of one JSON object seen so far, as 64-bit FNV-1a hashes: the
/// first 32 on the stack, any more in `spill` (allocated only for objects
/// with more keys than that). A key whose hash was seen before is taken as
/// given twice: two different keys of one record colliding in 64 bits is
/// not a case to plan for.
struct KeySet {
    small: [u64; 32],
    len: usize,
    spill: Vec<u64>,
}

impl KeySet {
    fn new() -> Self {
        KeySet {
            small: [0; 32],
            len: 0,
            spill: Vec::new(),
        }
    }

    /// Notes `key`; false when it was noted before.
    fn insert(&mut self, key: &[u8]) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let n = self.len.min(self.small.len());
        if self.small[..n].contains(&h) || self.spill.contains(&h) {
            return false;
        }
        if self.len < self.small.len() {
            self.small[self.len] = h;
        } else {
            self.spill.push(h);
        }
        self.len += 1;
        true
    }
}

/// Skips a value like `IgnoredAny`, noting how deep it nests: the depth of
/// a pulled record comes from the same pass that reads its bookkeeping.
struct Depth<'c>(&'c std::cell::Cell<usize>, usize);

impl<'de> DeserializeSeed<'de> for Depth<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Depth<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        let depth = self.1 + 1;
        self.0.set(self.0.get().max(depth));
        while seq.next_element_seed(Depth(self.0, depth))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let depth = self.1 + 1;
        self.0.set(self.0.get().max(depth));
        let mut keys = KeySet::new();
        while let Some(JsonKey(key)) = map.next_key::<JsonKey<'de>>()? {
            if !keys.insert(key.as_bytes()) {
                return Err(serde::de::Error::custom(format!(
                    "key `{key}` appears twice in a nested object"
                )));
            }
            map.next_value_seed(Depth(self.0, depth))?;
        }
        Ok(())
    }
}

impl Scan<'_> {
    #[inline]
    fn slot(def: &CollectionDef, key: &str) -> Option<Slot> {
        if key == def.id_field {
            Some(Slot::ServerId)
        } else if key == def.client_id_field {
            Some(Slot::ClientId)
        } else if key == "rowVersion" {
            Some(Slot::RowVersion)
        } else if key == "deleted" {
            Some(Slot::Deleted)
        } else if let Some(p) = &def.parent {
            if key == p.id_field {
                Some(Slot::ParentId)
            } else if key == p.client_id_field {
                Some(Slot::ParentClientId)
            } else {
                None
            }
        } else {
            None
        }
    }
}

/// The JSON types a bookkeeping field may have. Read with a visitor of its
/// own: an untagged enum would build (and drop) an error for every `null`
/// and `false`, which dominated the scan of a pulled page.
enum Scalar {
    Int(i64),
    Bool(bool),
    Null,
    Other,
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Scalar, E> {
        Ok(i64::try_from(v).map_or(Scalar::Other, Scalar::Int))
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = std::result::Result<Meta, String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = std::result::Result<Meta, String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut meta = Meta::default();
        let mut problem = None;
        let depth = std::cell::Cell::new(1);
        let mut seen = 0u8;
        let def = self.def;
        let mut keys = SeenKeys::new(self.memo);
        while let Some(JsonKey(key)) = map.next_key::<JsonKey<'de>>()? {
            // Any key given twice makes the record ambiguous (which value is
            // it?): refused, whatever the values (docs/BAD_INPUTS.md).
            if !keys.insert(key.as_bytes()) {
                problem.get_or_insert(format!("field `{key}` appears twice"));
            }
            let Some(slot) = Self::slot(def, &key) else {
                map.next_value_seed(Depth(&depth, 1))?;
                continue;
            };
            // A bookkeeping field given twice makes the record ambiguous
            // (which id is it?): refused, whatever the values.
            let bit = 1u8 << (slot as u8);
            if seen & bit != 0 {
                problem.get_or_insert(format!("field `{key}` appears twice"));
            }
            seen |= bit;
            let value: Scalar = map.next_value()?;
            let int = |v: &Scalar| match v {
                Scalar::Int(i) => Ok(Some(*i)),
                Scalar::Null => Ok(None),
                _ => Err(format!("field `{key}` must be an integer or null")),
            };
            let result = match slot {
                Slot::ServerId => int(&value).map(|v| meta.server_id = v),
                Slot::ClientId => int(&value).map(|v| meta.client_id = v),
                Slot::RowVersion => int(&value).map(|v| meta.row_version = v),
                Slot::ParentId => int(&value).map(|v| meta.parent_id = v),
                Slot::ParentClientId => int(&value).map(|v| meta.parent_client_id = v),
                Slot::Deleted => match value {
                    Scalar::Bool(b) => {
                        meta.deleted = b;
                        Ok(())
                    }
                    Scalar::Null => Ok(()),
                    _ => Err("field `deleted` must be a boolean".to_string()),
                },
            };
            if let Err(e) = result {
                problem.get_or_insert(e);
            }
        }
        meta.depth = depth.get();
        Ok(match problem {
            Some(p) => Err(p),
            None => Ok(meta),
        })
    }
}

/// Scans a record's JSON text for its bookkeeping fields. Fails when the text
/// is not an object or a bookkeeping field has the wrong type.
#[cfg(test)]
pub fn scan(def: &CollectionDef, json: &str) -> std::result::Result<Meta, String> {
    scan_with(def, json, &mut KeyMemo::new())
}

/// [`scan`], for the records of one collection in a row: `memo` carries
/// their keys from one record to the next (see [`KeyMemo`]).
pub fn scan_with(
    def: &CollectionDef,
    json: &str,
    memo: &mut KeyMemo,
) -> std::result::Result<Meta, String> {
    let mut de = serde_json::Deserializer::from_str(json);
    let scanner = Scan { def, memo };
    match scanner.deserialize(&mut de) {
        Ok(r) => r,
        Err(e) => Err(format!("not a JSON object: {e}")),
    }
}

/// Reads the bookkeeping fields of a record given as a JSON object value,
/// with the same rules as `scan`.
pub fn meta_of(def: &CollectionDef, obj: &Map<String, Value>) -> Result<Meta> {
    let int = |field: &str| -> Result<Option<i64>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| Error::invalid(&def.name, field, "must be an integer or null")),
        }
    };
    let deleted = match obj.get("deleted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::invalid(&def.name, "deleted", "must be a boolean")),
    };
    let (parent_id, parent_client_id) = match &def.parent {
        Some(p) => (int(&p.id_field)?, int(&p.client_id_field)?),
        None => (None, None),
    };
    Ok(Meta {
        server_id: int(&def.id_field)?,
        client_id: int(&def.client_id_field)?,
        row_version: int("rowVersion")?,
        deleted,
        parent_id,
        parent_client_id,
        depth: 0,
        versionless: false,
    })
}

/// The deepest nesting a record may have. serde_json reads at most 128
/// levels; a record is read back inside other values (a page, a conflict
/// entry), so what is stored stays well below (invariant 14: what the
/// engine accepts, it can read back).
pub const MAX_DEPTH: usize = 64;

/// The depth of a value, for the app's writes.
pub fn value_depth(value: &Value) -> usize {
    match value {
        Value::Object(m) => 1 + m.values().map(value_depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The last client id this process handed out.
static LAST_CLIENT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// A new client id: milliseconds since the epoch in the high bits and 22
/// bits below that start at a random point each millisecond, so two devices
/// practically never pick the same one. On one device (one process) ids are
/// distinct and increasing even within a millisecond: an id is never below
/// the last one plus one (B-tree friendly). Always positive.
pub fn new_client_id() -> i64 {
    use std::sync::atomic::Ordering;
    let millis = chrono::Utc::now().timestamp_millis().max(1) as u64;
    // The low half of the 22 bits is left for ids made in the same
    // millisecond after this one.
    let random = fastrand::u64(..1 << 21);
    let fresh = (((millis << 22) | random) & (i64::MAX as u64)) as i64;
    let mut last = LAST_CLIENT_ID.load(Ordering::Relaxed);
    loop {
        let id = fresh.max(last.saturating_add(1));
        match LAST_CLIENT_ID.compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return id,
            Err(seen) => last = seen,
        }
    }
}

/// True when two records hold the same business data, ignoring `rowVersion`
/// (which only the server assigns).
pub fn same_business_data(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let keys = a
        .keys()
        .chain(b.keys())
        .filter(|k| k.as_str() != "rowVersion");
    for k in keys {
        if a.get(k) != b.get(k) {
            return false;
        }
    }
    true
}

/// How the app names a record: by its server id, or by its client id (the
/// only id a record has until the server confirmed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordId {
    /// The server id (`<key>Id`).
    Server(i64),
    /// The client id (`<key>ClientId`).
    Client(i64),
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordId::Server(id) => write!(f, "id {id}"),
            RecordId::Client(id) => write!(f, "client id {id}"),
        }
    }
}

/// Kind of pending change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A record the server has not confirmed yet.
    Create,
    /// An edit of a record the server has.
    Update,
    /// A logical delete.
    Delete,
}

impl Op {
    /// `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Op> {
        match s {
            "create" => Ok(Op::Create),
            "update" => Ok(Op::Update),
            "delete" => Ok(Op::Delete),
            other => Err(Error::Database(format!("unknown outbox op `{other}`"))),
        }
    }
}

impl rusqlite::types::FromSql for Op {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Op::parse(s).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    #[test]
    fn scan_reads_bookkeeping_and_ignores_the_rest() {
        let cat = Catalogue::documented();
        let def = cat.require("orderDetails").unwrap();
        let m = scan(
            def,
            r#"{"orderDetailId":5,"orderDetailClientId":null,"orderId":7,"orderClientId":9,
               "rowVersion":42,"deleted":true,"extra":{"deep":[1,2,{"x":"y"}]},"quantity":2.5}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            Meta {
                server_id: Some(5),
                client_id: None,
                row_version: Some(42),
                deleted: true,
                parent_id: Some(7),
                parent_client_id: Some(9),
                depth: 4,
                versionless: false,
            }
        );
        // Keys written with escapes (not borrowed from the text) read the same.
        let escaped = scan(
            def,
            r#"{"orderDetail\u0049d":5,"order\u0049d":7,"rowVersion":42,"deleted":true}"#,
        )
        .unwrap();
        assert_eq!(
            (escaped.server_id, escaped.parent_id, escaped.row_version),
            (Some(5), Some(7), Some(42))
        );
    }

    #[test]
    fn scan_rejects_wrong_types_and_non_objects() {
        let cat = Catalogue::documented();
        let def = cat.require("products").unwrap();
        assert!(scan(def, r#"{"productId":"12","rowVersion":1}"#)
            .unwrap_err()
            .contains("productId"));
        assert!(scan(def, r#"{"productId":1,"rowVersion":1.5}"#).is_err());
        assert!(scan(def, r#"{"productId":1,"deleted":"yes"}"#).is_err());
        assert!(scan(def, r#"[1,2]"#).is_err());
        assert!(scan(def, r#"{"productId":1"#).is_err());
    }

    #[test]
    fn same_bytes_is_equality_at_every_length() {
        let base: Vec<u8> = (0u8..24).map(|i| b'a' + i).collect();
        for n in 0..base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 1;
                assert!(!same_bytes(a, &b), "length {n}, byte {i} differs");
            }
            assert!(!same_bytes(a, &base[..n + 1]));
        }
    }

    #[test]
    fn a_key_memo_carried_over_records_still_finds_every_key_given_twice() {
        let cat = Catalogue::documented();
        let def = cat.require("products").unwrap();
        let mut memo = KeyMemo::new();
        let mut scan = |text: &str| scan_with(def, text, &mut memo);
        // The memo learns a record's keys, then matches the next ones.
        assert!(scan(r#"{"productId":1,"name":"a","price":1,"rowVersion":1}"#).is_ok());
        assert!(scan(r#"{"productId":2,"name":"b","price":2,"rowVersion":2}"#).is_ok());
        // A record that follows the memo, then gives a key it already gave.
        let err = scan(r#"{"productId":3,"name":"c","productId":4}"#).unwrap_err();
        assert!(err.contains("`productId` appears twice"), "{err}");
        // Fewer keys, other keys, other order: each checked as it is.
        assert!(scan(r#"{"productId":5,"name":"d"}"#).is_ok());
        assert!(scan(r#"{"name":"e","productId":6,"code":"x","rowVersion":3}"#).is_ok());
        let err = scan(r#"{"name":"f","productId":7,"name":"g"}"#).unwrap_err();
        assert!(err.contains("`name` appears twice"), "{err}");
        // After a refused record the memo holds no key twice: the same
        // record is refused again, and a good one passes.
        assert!(scan(r#"{"name":"f","productId":7,"name":"g"}"#).is_err());
        assert!(scan(r#"{"name":"h","productId":8}"#).is_ok());
        // A key twice right where the memo ends.
        assert!(scan(r#"{"name":"i","productId":9,"productId":9}"#).is_err());
        // The same text scanned with a fresh memo gives the same answers.
        for text in [
            r#"{"productId":1,"name":"a","price":1,"rowVersion":1}"#,
            r#"{"productId":3,"name":"c","productId":4}"#,
        ] {
            assert_eq!(
                scan_with(def, text, &mut KeyMemo::new()).is_ok(),
                super::scan(def, text).is_ok()
            );
        }
    }

    #[test]
    fn scan_refuses_any_key_given_twice() {
        let cat = Catalogue::documented();
        let def = cat.require("products").unwrap();
        let twice = scan(
            def,
            r#"{"productId":1,"name":"a","rowVersion":1,"name":"b"}"#,
        );
        assert!(twice.unwrap_err().contains("`name` appears twice"));
        assert!(scan(def, r#"{"productId":1,"x":{"a":1,"b":{"a":2},"a":3}}"#).is_err());
        assert!(scan(def, r#"{"productId":1,"x":[{"a":1},{"a":2}]}"#).is_ok());
        // Past the keys kept on the stack too.
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{\"productId\":1,{}}}", many.join(","));
        assert!(scan(def, &text).is_ok());
        let text = format!("{{\"productId\":1,{},\"k35\":0}}", many.join(","));
        assert!(scan(def, &text).is_err());
    }

    #[test]
    fn meta_of_agrees_with_scan() {
        let cat = Catalogue::documented();
        let def = cat.require("orderDetails").unwrap();
        let text =
            r#"{"orderDetailId":null,"orderDetailClientId":3,"orderClientId":9,"deleted":false}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let mut scanned = scan(def, text).unwrap();
        assert_eq!(scanned.depth, 1);
        scanned.depth = 0;
        assert_eq!(meta_of(def, v.as_object().unwrap()).unwrap(), scanned);
        let bad: Value = serde_json::json!({"orderId": "x"});
        assert!(matches!(
            meta_of(def, bad.as_object().unwrap()),
            Err(Error::InvalidRecord { field, .. }) if field == "orderId"
        ));
    }

    #[test]
    fn scan_finds_the_depth_and_values_count_theirs() {
        let cat = Catalogue::documented();
        let def = cat.require("products").unwrap();
        let m = scan(def, r#"{"productId":1,"a":[{"b":"[[{{"}],"c":"\\\""}"#).unwrap();
        assert_eq!(m.depth, 3);
        let deep = format!(
            r#"{{"productId":1,"x":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(scan(def, &deep).unwrap().depth, 101);
        let v: Value = serde_json::from_str(r#"{"a":[{"b":{}}]}"#).unwrap();
        assert_eq!(value_depth(&v), 4);
    }

    #[test]
    fn client_ids_are_positive_time_ordered_and_distinct() {
        let a = new_client_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_client_id();
        assert!(a > 0 && b > a);
        // Made in a row, within a millisecond or not, in any build profile:
        // distinct and increasing.
        let many: Vec<i64> = (0..100_000).map(|_| new_client_id()).collect();
        assert!(many.windows(2).all(|w| w[1] > w[0]));
        // From several threads at once: still distinct.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..10_000).map(|_| new_client_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<i64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
