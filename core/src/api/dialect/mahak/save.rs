//! The real server's save: the request in camelCase without null ids, and
//! its answer of one `Results` entry per record, matched to the records
//! sent by client id or index, partially applied.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::api::dialect::codec::{
    by_collection, protocol, Change, SaveAnswer, SaveOutcome, SaveRules,
};
use crate::api::envelope::{get_ci, lenient_int};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::Result;
use crate::record::Op;

/// The Persian and English texts of a per-record "already registered"
/// error, matched without regard to case when the app sets none.
pub const ALREADY_REGISTERED: [&str; 4] = [
    "قبلا ثبت شده",
    "قبلاً ثبت شده",
    "already registered",
    "already exists",
];

/// `{ "<collection>": [record, ...] }`, camelCase. Ids the record does not
/// have yet (null) are left out rather than sent as null, since the server's
/// model binds them as integers.
pub(super) fn save_body(catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>> {
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
pub(super) fn parse_save(
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
