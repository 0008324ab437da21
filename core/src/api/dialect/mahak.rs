//! The real server's dialect (`docs/WIRE.md`): MD5 login with the token at
//! `Data.UserToken`, `from<Entity>Version` pull keys, `Data.Objects` arrays
//! with no `hasMore`, and save answers with one `Results` entry per record,
//! partially applied. Answers are PascalCase; every key is read without
//! regard to case, and records are handed on in the Swagger's camelCase, the
//! one naming the app sees.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::documented::by_collection;
use super::{check_pulled, protocol, PulledCollection, SaveAnswer, SaveOutcome, SaveRules};
use crate::api::envelope::{get_ci, lenient_int};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::Result;
use crate::record::{self, JsonKey};
use crate::store::Op;
use crate::sync::push::Change;

/// Tehran's offset from UTC (no daylight saving since 2022): the real
/// server writes its times offset-free in local time.
const TEHRAN_OFFSET_SECS: i64 = 3 * 3600 + 30 * 60;

/// The Persian and English texts of a per-record "already registered"
/// error, matched without regard to case when the app sets none.
pub const ALREADY_REGISTERED: [&str; 4] = [
    "قبلا ثبت شده",
    "قبلاً ثبت شده",
    "already registered",
    "already exists",
];

// ----- records --------------------------------------------------------------

/// Gives every object key of a JSON text (valid JSON, as serde checked it)
/// a lowercase first letter, in place: `ProductId` becomes `productId`, the
/// Swagger's naming. Only ASCII letters change, to ASCII letters.
fn camel_bytes(bytes: &mut [u8]) {
    // One entry per open container: true for an object.
    let mut stack: Vec<bool> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                if expect_key && bytes.get(start).is_some_and(u8::is_ascii_uppercase) {
                    bytes[start] = bytes[start].to_ascii_lowercase();
                }
                i = start;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                expect_key = false;
            }
            b'{' => {
                stack.push(true);
                expect_key = true;
            }
            b'[' => {
                stack.push(false);
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => expect_key = stack.last() == Some(&true),
            _ => {}
        }
        i += 1;
    }
}

/// A whole pull answer in camelCase (see [`camel_bytes`]), reusing its
/// buffer.
pub(crate) fn camel_page(text: String) -> String {
    let mut bytes = text.into_bytes();
    camel_bytes(&mut bytes);
    // Only ASCII letters changed: still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
fn camel_keys(json: &str) -> String {
    camel_page(json.to_string())
}

/// The same naming for a record the app gives as a value: top-level keys
/// and nested ones. Where both `Name` and `name` are given, the camelCase
/// one wins.
pub fn camel_object(obj: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(obj.len());
    let mut pascal = Vec::new();
    for (k, v) in obj {
        let v = camel_value(v);
        match lower_first(&k) {
            Some(lower) => pascal.push((lower, v)),
            None => {
                out.insert(k, v);
            }
        }
    }
    for (k, v) in pascal {
        out.entry(k).or_insert(v);
    }
    out
}

fn camel_value(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(camel_object(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(camel_value).collect()),
        other => other,
    }
}

fn lower_first(key: &str) -> Option<String> {
    let first = key.chars().next().filter(char::is_ascii_uppercase)?;
    Some(format!("{}{}", first.to_ascii_lowercase(), &key[1..]))
}

// ----- pull -----------------------------------------------------------------

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
pub(crate) fn parse_pull<'a>(
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
        for (i, rec) in list.into_iter().enumerate() {
            let text = rec.get();
            let mut meta = record::scan(def, text)
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

// ----- save -----------------------------------------------------------------

/// `{ "<collection>": [record, ...] }`, camelCase. Ids the record does not
/// have yet (null) are left out rather than sent as null, since the server's
/// model binds them as integers.
pub(crate) fn save_body(catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>> {
    let mut body = Map::new();
    for (def, list) in by_collection(catalogue, changes) {
        let mut records = Vec::with_capacity(list.len());
        for c in list {
            let mut rec = c.payload.clone();
            let ids = std::iter::once(def.id_field.as_str())
                .chain(std::iter::once("rowVersion"))
                .chain(def.links.iter().map(|l| l.id_field.as_str()));
            for field in ids {
                if rec.get(field).is_some_and(Value::is_null) {
                    rec.remove(field);
                }
            }
            records.push(Value::Object(rec));
        }
        body.insert(def.name.clone(), Value::Array(records));
    }
    Ok(serde_json::to_vec(&body)?)
}

/// Reads `Data` of a `SaveAllData` answer, `{ "Objects": { "<Collection>":
/// { "Results": [ { Result, Index, EntityId, EntityClientId, RowVersion,
/// Errors } ] } } }`, into one outcome per change. A result is matched by
/// `EntityClientId` when it has one, else by `Index` within its collection's
/// array (1-based, as the real server writes it). A result is applied only to
/// the one record it names, one to one (DESIGN.md invariant 15): a result
/// whose client id was not sent, whose `Index` is 0 or out of range, or that
/// names a record another result of the collection names too (an `Index`
/// repeated), is applied to none, and the records it would name stay
/// `Unknown` (in doubt, for the reconciling pull).
pub(crate) fn parse_save(
    catalogue: &Catalogue,
    changes: &[&Change],
    data: &RawValue,
    rules: &SaveRules,
    tracking_id: Option<&str>,
) -> Result<SaveAnswer> {
    let fail = |collection: &str, message: String| protocol(Some(collection), message, tracking_id);
    let data: Value = serde_json::from_str(data.get())?;
    let objects = match &data {
        Value::Object(m) => get_ci(m, "objects").and_then(Value::as_object),
        _ => None,
    };
    let mut outcomes = vec![SaveOutcome::Unknown; changes.len()];
    let Some(objects) = objects else {
        return Ok(SaveAnswer { outcomes });
    };
    let position: HashMap<*const Change, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (*c as *const Change, i))
        .collect();
    for (def, sent) in by_collection(catalogue, changes) {
        let Some(entry) = get_ci(objects, &def.name) else {
            continue;
        };
        let results = match entry {
            Value::Null => continue,
            Value::Object(e) => match get_ci(e, "results") {
                None | Some(Value::Null) => continue,
                Some(Value::Array(list)) => list,
                Some(_) => return Err(fail(&def.name, "`Results` is not a list".into())),
            },
            _ => return Err(fail(&def.name, "save result is not an object".into())),
        };
        let mut parsed = Vec::with_capacity(results.len());
        for (i, r) in results.iter().enumerate() {
            parsed.push(read_result(r).map_err(|m| fail(&def.name, format!("result {i}: {m}")))?);
        }
        // The record each result names: by a client id sent, else by a
        // 1-based index in range; a client id never sent names none.
        let named: Vec<Option<usize>> = parsed
            .iter()
            .map(|r| match r.client_id.filter(|&c| c != 0) {
                Some(c) => sent.iter().position(|s| s.client_id == Some(c)),
                None => r
                    .index
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| usize::try_from(i).ok())
                    .filter(|&i| i < sent.len()),
            })
            .collect();
        let mut claims = vec![0u32; sent.len()];
        for at in named.iter().flatten() {
            claims[*at] += 1;
        }
        for (r, at) in parsed.into_iter().zip(named) {
            // A record two results name is named by neither.
            let Some(at) = at.filter(|&at| claims[at] == 1) else {
                continue;
            };
            let change = sent[at];
            let Some(&slot) = position.get(&(change as *const Change)) else {
                continue;
            };
            outcomes[slot] = outcome(def, change, r, rules);
        }
    }
    Ok(SaveAnswer { outcomes })
}

struct RawResult {
    ok: bool,
    index: Option<i64>,
    server_id: Option<i64>,
    client_id: Option<i64>,
    row_version: Option<i64>,
    errors: Vec<(Option<String>, Option<i64>, String)>,
}

fn read_result(r: &Value) -> std::result::Result<RawResult, String> {
    let obj = r.as_object().ok_or("not an object")?;
    let int = |k: &str| match get_ci(obj, k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("`{k}` is not an integer")),
    };
    let ok = match get_ci(obj, "result") {
        Some(Value::Bool(b)) => *b,
        None | Some(Value::Null) => false,
        Some(_) => return Err("`Result` is not a boolean".into()),
    };
    let mut errors = Vec::new();
    if let Some(Value::Array(list)) = get_ci(obj, "errors") {
        for e in list {
            let Some(e) = e.as_object() else { continue };
            let text = |k: &str| get_ci(e, k).and_then(Value::as_str).map(str::to_string);
            let code = get_ci(e, "code").and_then(lenient_int);
            errors.push((
                text("property"),
                code,
                text("error")
                    .or_else(|| text("message"))
                    .unwrap_or_default(),
            ));
        }
    }
    let server_id = int("entityId")?;
    let row_version = int("rowVersion")?;
    // Ids and versions are never negative: such a result is malformed, and
    // the whole answer with it (nothing is applied). A 0 id is no id.
    if server_id.is_some_and(|id| id < 0) {
        return Err("`EntityId` is negative".into());
    }
    if row_version.is_some_and(|rv| rv < 0) {
        return Err("`RowVersion` is negative".into());
    }
    Ok(RawResult {
        ok,
        index: int("index")?,
        server_id: server_id.filter(|&id| id > 0),
        client_id: int("entityClientId")?,
        row_version,
        errors,
    })
}

fn outcome(def: &CollectionDef, change: &Change, r: RawResult, rules: &SaveRules) -> SaveOutcome {
    if r.ok {
        return SaveOutcome::Saved {
            server_id: r.server_id.filter(|&s| s != 0).or(change.server_id),
            row_version: r.row_version,
        };
    }
    let message = {
        let texts: Vec<&str> = r
            .errors
            .iter()
            .map(|(_, _, t)| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if texts.is_empty() {
            "refused by the server without a reason".to_string()
        } else {
            texts.join("; ")
        }
    };
    let property = r.errors.iter().find_map(|(p, _, _)| p.clone());
    let code = r.errors.iter().find_map(|(_, c, _)| *c);
    if change.op == Op::Create && already_registered(def, &r.errors, &message, rules) {
        return SaveOutcome::AlreadyThere { message };
    }
    SaveOutcome::Refused {
        property,
        code,
        message,
    }
}

/// A refusal that says the create is already on the server: an error on the
/// collection's own `<key>Id`, or a text the rules name.
fn already_registered(
    def: &CollectionDef,
    errors: &[(Option<String>, Option<i64>, String)],
    message: &str,
    rules: &SaveRules,
) -> bool {
    let on_own_id = errors.iter().any(|(p, _, _)| {
        p.as_deref()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case(&def.id_field))
    });
    let lower = message.to_lowercase();
    let patterns: Vec<&str> = if rules.already_registered.is_empty() {
        ALREADY_REGISTERED.to_vec()
    } else {
        rules
            .already_registered
            .iter()
            .map(String::as_str)
            .collect()
    };
    on_own_id
        || patterns
            .iter()
            .any(|p| !p.is_empty() && lower.contains(&p.to_lowercase()))
}

// ----- login ----------------------------------------------------------------

/// The `exp` of a JWT's payload (base64url JSON), read without checking the
/// signature: the client only needs to know when to renew.
pub fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let secs = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    DateTime::from_timestamp(secs, 0)
}

/// The server's `ServerTime`: offset-free Tehran time as the real server
/// writes it (`2025-10-04T15:18:38.2345036`), or RFC 3339 with an offset.
pub fn parse_server_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())?;
    local
        .and_utc()
        .checked_sub_signed(chrono::Duration::seconds(TEHRAN_OFFSET_SECS))
}

/// Writes the dates of a record the app wrote as the real server writes
/// them: offset-free Tehran time (`2025-10-04T15:18:38.2345036`). Whether
/// the server accepts `Z` or `+03:30` is not known (WIRE.md section 8), so
/// a date with an offset is sent as one it certainly reads, the same
/// instant. Only fields named like dates (`date`, `...Date`, `...Time`)
/// whose text is an RFC 3339 time with an offset change; an offset-free
/// date, a day without a time, and any other text stay as they are.
pub fn local_dates(obj: &mut Map<String, Value>) {
    let tehran = chrono::FixedOffset::east_opt(TEHRAN_OFFSET_SECS as i32);
    for (key, value) in obj.iter_mut() {
        if !(key.eq_ignore_ascii_case("date") || key.ends_with("Date") || key.ends_with("Time")) {
            continue;
        }
        let Value::String(text) = value else { continue };
        let (Ok(t), Some(tehran)) = (DateTime::parse_from_rfc3339(text.trim()), tehran) else {
            continue;
        };
        let local = t.with_timezone(&tehran).naive_local();
        let seconds = local.format("%Y-%m-%dT%H:%M:%S");
        // Ticks of 100 ns, as the server writes them (a leap second's
        // nanoseconds run past 10^9).
        let ticks = (local.and_utc().timestamp_subsec_nanos() / 100).min(9_999_999);
        *text = if ticks == 0 {
            seconds.to_string()
        } else {
            format!("{seconds}.{ticks:07}")
        };
    }
}

/// How a mahak login sends the password: per server (WIRE.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordHash {
    /// The lowercase hexadecimal MD5 (most servers; the default).
    #[default]
    Md5,
    /// The password as the user typed it (some servers).
    Plain,
}

impl std::str::FromStr for PasswordHash {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md5" => Ok(PasswordHash::Md5),
            "plain" => Ok(PasswordHash::Plain),
            other => Err(format!("unknown password hashing `{other}`: md5 or plain")),
        }
    }
}

/// The password as the login body carries it under `how`, in memory for
/// that body only; never stored.
pub fn login_password(password: &str, how: PasswordHash) -> String {
    match how {
        PasswordHash::Md5 => password_hash(password),
        PasswordHash::Plain => password.to_string(),
    }
}

/// The lowercase hexadecimal MD5 of a password, as the real server wants
/// it. Computed in memory for one login body; never stored.
pub fn password_hash(password: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(password.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::dialect::Dialect;

    /// A capture of the real server, exactly as it is in the fixtures.
    fn capture(name: &str) -> String {
        let path = format!(
            "{}/../tests/fixtures/mahak/captures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).expect("the captures are in the repo")
    }

    /// The `Data` of a captured answer, as the client hands it on.
    fn data_of(text: &str) -> Box<RawValue> {
        let v: Value = serde_json::from_str(text).expect("a capture is JSON");
        assert!(v["Result"].is_boolean(), "the envelope's flag is `Result`");
        serde_json::value::to_raw_value(&v["Data"]).expect("raw")
    }

    #[test]
    fn golden_products_answer_reads_as_camel_case_records() {
        let cat = Catalogue::mahak();
        let wanted = vec!["products".to_string(), "pictures".to_string()];
        let data = data_of(&capture("getalldata-products.response.json"));
        let page = Dialect::Mahak.page_text(data.get().to_string());
        let pulled = Dialect::Mahak
            .parse_pull(&cat, &wanted, &page, None)
            .expect("the capture parses");
        let names: Vec<&str> = pulled.iter().map(|c| c.def.name.as_str()).collect();
        assert_eq!(
            names,
            ["pictures", "products"],
            "asked collections only, parents first"
        );
        assert!(pulled[0].records.is_empty(), "`[]`: asked, unchanged");
        let products = &pulled[1];
        assert_eq!(products.records.len(), 6);
        // RowVersion above 2^31 and unordered-safe: the checkpoint is the max.
        assert_eq!(products.checkpoint(), Some(4_028_298_560));
        let (text, meta) = &products.records[0];
        assert_eq!(meta.server_id, Some(8_262_619));
        assert_eq!(meta.client_id, Some(0), "made in the desktop");
        assert!(!meta.deleted);
        let rec: Value = serde_json::from_str(text).expect("stored text is JSON");
        assert_eq!(
            rec["name"], "تيشرت بالنسياگاه  ",
            "Persian text and trailing spaces kept"
        );
        assert_eq!(rec["productCode"], 1);
        assert_eq!(
            rec["dataHash"], "C2CD3E8DB2D36A818B6B95B7FA17EA3910FBBD43",
            "unknown fields kept"
        );
        assert_eq!(
            rec["createDate"], "2025-10-04T15:18:38.2345036",
            "offset-free dates as they are"
        );
        assert!(rec.get("ProductId").is_none() && rec.get("productId").is_some());
        assert!(products.brings_news(4_028_298_558));
        assert!(
            !products.brings_news(4_028_298_560),
            "the record at the checkpoint is no news"
        );
    }

    #[test]
    fn golden_pictures_answer_has_asked_collections_empty_and_the_rest_ignored() {
        let cat = Catalogue::mahak();
        let request: Value =
            serde_json::from_str(&capture("getalldata-pictures.request.json")).expect("JSON");
        let asked: Vec<(&CollectionDef, i64)> = ["pictures", "photoGalleries"]
            .iter()
            .map(|n| (cat.require(n).expect("known"), 0))
            .collect();
        let body: Value =
            serde_json::from_slice(&Dialect::Mahak.pull_body(&asked, 0, &[]).expect("body"))
                .expect("JSON");
        assert_eq!(body, request, "the same keys the capture's request used");
        let wanted = vec![
            "pictures".to_string(),
            "photoGalleries".to_string(),
            "people".to_string(),
        ];
        let data = data_of(&capture("getalldata-pictures.response.json"));
        let page = Dialect::Mahak.page_text(data.get().to_string());
        let pulled = Dialect::Mahak
            .parse_pull(&cat, &wanted, &page, None)
            .expect("parses");
        assert_eq!(pulled.len(), 2, "`People: null` brings nothing");
        assert!(pulled
            .iter()
            .all(|c| c.records.is_empty() && c.checkpoint().is_none()));
    }

    fn change(collection: &str, local_id: i64, client_id: i64, payload: Value) -> Change {
        Change {
            collection: collection.to_string(),
            local_id,
            counter: 1,
            op: Op::Create,
            server_id: None,
            client_id: Some(client_id),
            payload: payload.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn golden_partial_save_confirms_the_order_and_refuses_the_line() {
        let cat = Catalogue::mahak();
        let order = change(
            "orders",
            1,
            10001,
            serde_json::json!({"orderId": null, "orderClientId": 10001, "orderType": 201,
                "orderDate": "2025-11-29T12:00:00", "deliveryDate": "2025-11-29T12:00:00",
                "personId": 1, "settlementType": 1, "rowVersion": null}),
        );
        let line = change(
            "orderDetails",
            2,
            10002,
            serde_json::json!({"orderDetailClientId": 10002, "orderClientId": 10001,
                "orderId": null, "productId": 8308737, "count1": 1, "price": 1200000}),
        );
        let changes = [&order, &line];
        // The body says what the capture's request said, in camelCase (the
        // server binds keys without regard to case), with no null ids.
        let body: Value =
            serde_json::from_slice(&save_body(&cat, &changes).expect("body")).expect("JSON");
        let request: Value =
            serde_json::from_str(&capture("savealldata-partial.request.json")).expect("JSON");
        assert_eq!(body["orders"], request["Orders"]);
        assert_eq!(body["orderDetails"], request["OrderDetails"]);
        let data = data_of(&capture("savealldata-partial.response.json"));
        let answer =
            parse_save(&cat, &changes, &data, &SaveRules::default(), None).expect("parses");
        assert_eq!(
            answer.outcomes[0],
            SaveOutcome::Saved {
                server_id: Some(185_741_141),
                row_version: Some(4_028_579_157)
            }
        );
        assert_eq!(
            answer.outcomes[1],
            SaveOutcome::Refused {
                property: Some("IncomeId,ExpenseId,ProductDetailId".into()),
                code: None,
                message: "ProductDetailId or IncomeId or ExpenseId is required".into(),
            }
        );
    }

    #[test]
    fn save_results_match_by_client_id_then_index_and_check_bounds() {
        let cat = Catalogue::mahak();
        let a = change("people", 1, 11, serde_json::json!({"personClientId": 11}));
        let b = change("people", 2, 12, serde_json::json!({"personClientId": 12}));
        let changes = [&a, &b];
        let rules = SaveRules::default();
        let parse = |text: &str| {
            let data: Box<RawValue> = serde_json::from_str(text).expect("JSON");
            parse_save(&cat, &changes, &data, &rules, None)
        };
        // Out of order, one by client id, one by 1-based index; an index out
        // of bounds is ignored.
        let answer = parse(
            r#"{"Objects":{"People":{"Results":[
                {"Result":true,"Index":9,"EntityId":7,"EntityClientId":12,"RowVersion":5000000000},
                {"Result":false,"Index":1,"Errors":[{"Property":"PersonId","Error":"این رکورد قبلا ثبت شده است"}]},
                {"Result":true,"Index":3,"EntityId":8}]}}}"#,
        )
        .expect("parses");
        assert_eq!(
            answer.outcomes,
            [
                SaveOutcome::AlreadyThere {
                    message: "این رکورد قبلا ثبت شده است".into()
                },
                SaveOutcome::Saved {
                    server_id: Some(7),
                    row_version: Some(5_000_000_000)
                },
            ]
        );
        // An index of 0 names no record (the server's are 1-based).
        let answer = parse(r#"{"objects":{"people":{"results":[{"result":true,"index":0,"entityId":3,"rowVersion":1}]}}}"#)
            .expect("parses");
        assert_eq!(
            answer.outcomes,
            [SaveOutcome::Unknown, SaveOutcome::Unknown]
        );
        // An index repeated: neither result is applied, to either record.
        let answer = parse(
            r#"{"Objects":{"People":{"Results":[
                {"Result":true,"Index":1,"EntityId":3,"RowVersion":1},
                {"Result":true,"Index":1,"EntityId":4,"RowVersion":2}]}}}"#,
        )
        .expect("parses");
        assert_eq!(
            answer.outcomes,
            [SaveOutcome::Unknown, SaveOutcome::Unknown]
        );
        // A client id never sent names no record, not the one at its index.
        let answer = parse(
            r#"{"Objects":{"People":{"Results":[
                {"Result":true,"Index":1,"EntityId":3,"EntityClientId":99,"RowVersion":1},
                {"Result":true,"Index":2,"EntityId":4,"EntityClientId":12,"RowVersion":2}]}}}"#,
        )
        .expect("parses");
        assert_eq!(answer.outcomes[0], SaveOutcome::Unknown);
        assert!(matches!(
            answer.outcomes[1],
            SaveOutcome::Saved {
                server_id: Some(4),
                ..
            }
        ));
        // No Objects at all: nothing is known.
        assert!(parse("null")
            .expect("parses")
            .outcomes
            .iter()
            .all(|o| *o == SaveOutcome::Unknown));
        // Wrong types are a protocol error, not a guess.
        assert!(parse(r#"{"Objects":{"People":{"Results":[{"Result":"yes"}]}}}"#).is_err());
        assert!(parse(r#"{"Objects":{"People":{"Results":{}}}}"#).is_err());
        // A refusal by text only, with configured patterns.
        let custom = SaveRules {
            already_registered: vec!["DUPLICATE KEY".into()],
        };
        let data: Box<RawValue> = serde_json::from_str(
            r#"{"Objects":{"People":{"Results":[{"Result":false,"Index":1,"Errors":[{"Property":"Name","Error":"duplicate key row"}]}]}}}"#,
        )
        .expect("JSON");
        let answer = parse_save(&cat, &changes, &data, &custom, None).expect("parses");
        assert!(matches!(
            answer.outcomes[0],
            SaveOutcome::AlreadyThere { .. }
        ));
    }

    #[test]
    fn dates_with_an_offset_are_written_as_the_server_writes_them() {
        let mut obj = serde_json::json!({
            "orderDate": "2026-12-05T10:00:00Z",
            "deliveryDate": "2026-12-05T13:30:00.5+03:30",
            "date": "2026-03-20T23:45:12.1234567-01:00",
            "createDate": "2025-10-04T15:18:38.2345036",
            "birthDate": "1990-01-01",
            "description": "2026-12-05T10:00:00Z",
            "statusTime": 5,
            "updateDate": "not a date"
        });
        let Value::Object(m) = &mut obj else {
            unreachable!()
        };
        local_dates(m);
        assert_eq!(
            obj,
            serde_json::json!({
                "orderDate": "2026-12-05T13:30:00",
                "deliveryDate": "2026-12-05T13:30:00.5000000",
                "date": "2026-03-21T04:15:12.1234567",
                "createDate": "2025-10-04T15:18:38.2345036",
                "birthDate": "1990-01-01",
                "description": "2026-12-05T10:00:00Z",
                "statusTime": 5,
                "updateDate": "not a date"
            })
        );
        // What the server then reads back is the same instant.
        assert_eq!(
            parse_server_time("2026-12-05T13:30:00"),
            parse_server_time("2026-12-05T10:00:00Z")
        );
    }

    /// A record without a `RowVersion` (the Swagger's `OrderModel` has
    /// none) or with a null one is taken at version 0: it parses, it is no
    /// news and it moves no checkpoint.
    #[test]
    fn a_record_without_a_row_version_is_taken_at_version_0() {
        let cat = Catalogue::mahak();
        let wanted = vec!["orders".to_string(), "products".to_string()];
        let page = Dialect::Mahak.page_text(
            r#"{"Objects":{"Orders":[{"OrderId":7,"OrderCode":1},{"OrderId":8,"RowVersion":null}],"Products":[{"ProductId":1,"RowVersion":40}]}}"#
                .to_string(),
        );
        let pulled = Dialect::Mahak
            .parse_pull(&cat, &wanted, &page, None)
            .expect("parses");
        let orders = pulled
            .iter()
            .find(|c| c.def.name == "orders")
            .expect("orders");
        let versions: Vec<Option<i64>> =
            orders.records.iter().map(|(_, m)| m.row_version).collect();
        assert_eq!(versions, [Some(0), Some(0)]);
        assert!(!orders.brings_news(0));
        assert_eq!(orders.checkpoint().unwrap_or(0).max(25), 25);
        let products = pulled
            .iter()
            .find(|c| c.def.name == "products")
            .expect("products");
        assert!(products.brings_news(0));
    }

    /// Collections the real server names in odd cases (WIRE.md section 5:
    /// `companies`, `Mahakpays` in a pull) carry records like any other.
    #[test]
    fn collections_in_odd_cases_carry_their_records() {
        let cat = Catalogue::mahak();
        let wanted = vec!["mahakpays".to_string(), "companies".to_string()];
        for (pays, companies) in [("Mahakpays", "companies"), ("MahakPays", "Companies")] {
            let page = Dialect::Mahak.page_text(format!(
                r#"{{"Objects":{{"{pays}":[{{"MahakPayId":3,"MahakPayClientId":0,"RowVersion":11}}],"{companies}":[{{"CompanyInfoId":1,"RowVersion":12}}],"Banks":null}}}}"#
            ));
            let pulled = Dialect::Mahak
                .parse_pull(&cat, &wanted, &page, None)
                .expect("parses");
            let got: Vec<(&str, Option<i64>, Option<i64>)> = pulled
                .iter()
                .flat_map(|c| {
                    c.records
                        .iter()
                        .map(move |(_, m)| (c.def.name.as_str(), m.server_id, m.row_version))
                })
                .collect();
            assert_eq!(got.len(), 2, "{pays}, {companies}: {got:?}");
            assert!(got.contains(&("mahakpays", Some(3), Some(11))), "{got:?}");
            assert!(got.contains(&("companies", Some(1), Some(12))), "{got:?}");
        }
    }

    #[test]
    fn pulled_records_are_validated_whole() {
        let cat = Catalogue::mahak();
        let wanted = vec!["products".to_string()];
        let bad = [
            r#"{"Objects":{"Products":[{"RowVersion":1}]}}"#,
            r#"{"Objects":{"Products":[{"ProductId":1,"RowVersion":-5}]}}"#,
            r#"{"Objects":{"Products":[{"ProductId":"1","RowVersion":1}]}}"#,
            r#"{"Objects":{"Products":{"ProductId":1}}}"#,
            r#"{"Objects":[]}"#,
        ];
        let deep = format!(
            r#"{{"Objects":{{"Products":[{{"ProductId":1,"RowVersion":1,"X":{}1{}}}]}}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        let bad = bad.iter().copied().chain([deep.as_str()]);
        for text in bad {
            let data: Box<RawValue> = serde_json::from_str(text).expect("JSON");
            assert!(
                Dialect::Mahak
                    .parse_pull(
                        &cat,
                        &wanted,
                        &Dialect::Mahak.page_text(data.get().to_string()),
                        None
                    )
                    .is_err(),
                "{text}"
            );
        }
        let ok: Box<RawValue> = serde_json::from_str(
            r#"{"objects":{"PRODUCTS":[{"productId":2,"RowVersion":9,"Deleted":true}],"Unknown":[1]},"Extra":1}"#,
        )
        .expect("JSON");
        let ok_page = Dialect::Mahak.page_text(ok.get().to_string());
        let pulled = Dialect::Mahak
            .parse_pull(&cat, &wanted, &ok_page, None)
            .expect("parses");
        assert!(pulled[0].records[0].1.deleted);
    }

    #[test]
    fn camel_keys_changes_keys_only() {
        let text = r#"{"ProductId":1,"Name":"Tea \"Big\" {X}","Tags":["A",{"Deep":"B"}],"x":{"Y":[]},"ID":2}"#;
        let out = camel_keys(text);
        assert_eq!(
            out,
            r#"{"productId":1,"name":"Tea \"Big\" {X}","tags":["A",{"deep":"B"}],"x":{"y":[]},"iD":2}"#
        );
        assert_eq!(camel_keys(&out), out, "camelCase stays as it is");
        // Persian text and escapes pass through untouched.
        let fa = r#"{"Name":"تيشرت بالنسياگاه  ","Q":"a\\","R":"\u0041"}"#;
        assert_eq!(
            camel_keys(fa),
            r#"{"name":"تيشرت بالنسياگاه  ","q":"a\\","r":"\u0041"}"#
        );
    }

    /// The byte-level transform agrees with a transform of the parsed value
    /// on random records.
    #[test]
    fn camel_keys_agrees_with_the_value_transform() {
        let mut rng = fastrand::Rng::with_seed(5);
        fn gen(rng: &mut fastrand::Rng, depth: u32) -> Value {
            match rng.u32(..if depth > 3 { 4 } else { 6 }) {
                0 => Value::Null,
                1 => Value::from(rng.i64(..)),
                2 => Value::from(f64::from(rng.u32(..1_000_000)) / 4.0),
                3 => Value::from(["A\"b", "ي ك ", "Z\\", "{[,:]}"][rng.usize(..4)]),
                4 => Value::Array((0..rng.usize(..4)).map(|_| gen(rng, depth + 1)).collect()),
                _ => Value::Object(
                    (0..rng.usize(..5))
                        .map(|i| {
                            let k = ["Id", "name", "A\"Q", "Ü", "deleted", "RowVersion"]
                                [rng.usize(..6)];
                            (format!("{k}{i}"), gen(rng, depth + 1))
                        })
                        .collect(),
                ),
            }
        }
        for _ in 0..2_000 {
            let v = gen(&mut rng, 0);
            let text = serde_json::to_string(&v).unwrap();
            let fast: Value = serde_json::from_str(&camel_keys(&text)).unwrap();
            assert_eq!(fast, camel_value(v));
        }
    }

    #[test]
    fn camel_object_prefers_the_camel_key() {
        let v = serde_json::json!({"Name": "a", "name": "b", "Price1": 5, "Inner": {"X": 1}});
        let Value::Object(m) = v else { unreachable!() };
        let m = camel_object(m);
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"name": "b", "price1": 5, "inner": {"x": 1}})
        );
    }

    #[test]
    fn md5_of_a_password_is_lowercase_hex() {
        assert_eq!(password_hash(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(password_hash("pass1"), "a722c63db8ec8625af6cf71cb8c2d939");
    }

    #[test]
    fn jwt_expiry_and_server_time() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"nbf":1700000000,"exp":1700604800,"iat":1700000000}"#);
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        assert_eq!(
            jwt_expiry(&token).map(|t| t.timestamp()),
            Some(1_700_604_800)
        );
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        let t = parse_server_time("2025-10-04T15:18:38.2345036").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-10-04T11:48:38.234503600+00:00");
        let z = parse_server_time("2025-10-04T11:48:38Z").unwrap();
        assert_eq!(z.timestamp(), t.timestamp());
        assert!(parse_server_time("yesterday").is_none());
    }
}
