//! `SaveAllDataV2`: one request is one SQLite transaction. Records are checked
//! (types, business rules, referential integrity, row versions), written in
//! catalogue order (parents first) so children can name a parent created in the
//! same request by its client id, and every failing record is collected; if any
//! failed, the transaction is rolled back and nothing is applied.

use std::collections::HashSet;

use rusqlite::{Connection, TransactionBehavior};
use serde_json::{json, Map, Value};

use crate::error::ServerError;
use crate::store;
use rowsync::{Catalogue, CollectionDef};

/// Referential integrity error code.
pub const CODE_INTEGRITY: i64 = 2001;
/// Concurrency conflict code.
pub const CODE_CONFLICT: i64 = 2002;
/// Validation error code.
pub const CODE_VALIDATION: i64 = 3001;

/// One failing record of a save.
#[derive(Debug, Clone)]
pub(crate) struct RecordFailure {
    pub entity: String,
    pub client_id: Option<i64>,
    pub id: Option<i64>,
    pub field: Option<String>,
    pub code: i64,
    pub message: String,
    pub server_record: Option<Value>,
}

impl RecordFailure {
    pub fn to_json(&self) -> Value {
        json!({
            "entity": self.entity,
            "clientId": self.client_id,
            "id": self.id,
            "field": self.field,
            "code": self.code,
            "message": self.message,
            "serverRecord": self.server_record,
        })
    }
}

/// What a save came to.
pub(crate) enum Saved {
    /// Committed: the `data` object (saved ids and versions per collection).
    Applied {
        data: Map<String, Value>,
        counts: Vec<(String, usize)>,
    },
    /// Nothing applied.
    Rejected {
        code: i64,
        message: String,
        errors: Vec<RecordFailure>,
        counts: Vec<(String, usize)>,
    },
}

fn request_error(message: String, counts: Vec<(String, usize)>) -> Saved {
    Saved::Rejected {
        code: CODE_VALIDATION,
        message,
        errors: Vec::new(),
        counts,
    }
}

/// References from a record to a record of another collection that are not
/// parent links: (collections holding it, id field, client id field, target
/// collection, target must not be deleted).
const REFERENCES: &[(&[&str], &str, &str, &str, bool)] = &[
    (
        &["orders", "invoices"],
        "customerId",
        "customerClientId",
        "persons",
        true,
    ),
    (
        &["orderDetails", "invoiceDetails"],
        "productId",
        "productClientId",
        "products",
        false,
    ),
];

/// Answers a `SaveAllDataV2` body.
pub(crate) fn save(
    conn: &mut Connection,
    catalogue: &Catalogue,
    max_records: usize,
    body: &[u8],
) -> Result<Saved, ServerError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Ok(request_error(format!("malformed JSON: {e}"), Vec::new())),
    };
    let Value::Object(map) = value else {
        return Ok(request_error(
            "the body must be a JSON object of collections".to_string(),
            Vec::new(),
        ));
    };
    let counts: Vec<(String, usize)> = map
        .iter()
        .map(|(k, v)| (k.clone(), v.as_array().map_or(0, Vec::len)))
        .collect();
    for (key, v) in &map {
        if catalogue.get(key).is_none() {
            return Ok(request_error(format!("unknown collection `{key}`"), counts));
        }
        let Some(list) = v.as_array() else {
            return Ok(request_error(
                format!("`{key}` must be a list of records"),
                counts,
            ));
        };
        if list.len() > max_records {
            return Ok(request_error(
                format!(
                    "too many records in `{key}`: {} (at most {max_records} per collection per save)",
                    list.len()
                ),
                counts,
            ));
        }
    }

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut counter = store::counter(&tx)?;
    let mut data = Map::new();
    let mut errors = Vec::new();
    let mut failed: HashSet<(String, i64)> = HashSet::new();
    for def in catalogue.iter() {
        let Some(Value::Array(list)) = map.get(&def.name) else {
            continue;
        };
        let mut saved = Vec::with_capacity(list.len());
        for rec in list {
            match save_one(&tx, def, rec, &mut counter, &failed)? {
                Ok(entry) => saved.push(entry),
                Err(f) => {
                    if let Some(cid) = f.client_id {
                        failed.insert((def.name.clone(), cid));
                    }
                    errors.push(f);
                }
            }
        }
        data.insert(def.name.clone(), Value::Array(saved));
    }
    if !errors.is_empty() {
        drop(tx);
        let code = if errors.iter().any(|e| e.code == CODE_CONFLICT) {
            CODE_CONFLICT
        } else if errors.iter().any(|e| e.code == CODE_INTEGRITY) {
            CODE_INTEGRITY
        } else {
            CODE_VALIDATION
        };
        let first = errors
            .iter()
            .find(|e| e.code == code)
            .map(|e| e.message.clone())
            .unwrap_or_default();
        let message = format!(
            "{} record(s) rejected, nothing saved; first: {first}",
            errors.len()
        );
        return Ok(Saved::Rejected {
            code,
            message,
            errors,
            counts,
        });
    }
    store::set_counter(&tx, counter)?;
    tx.commit()?;
    Ok(Saved::Applied { data, counts })
}

/// Reads an optional integer field: `Ok(None)` when missing or null,
/// `Err(())` when of another type.
fn int_field(obj: &Map<String, Value>, field: &str) -> Result<Option<i64>, ()> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(()),
    }
}

fn nonzero(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x != 0)
}

/// Saves one record inside the transaction. The inner `Err` is the record's
/// failure; the outer one a storage failure.
fn save_one(
    tx: &Connection,
    def: &CollectionDef,
    rec: &Value,
    counter: &mut i64,
    failed: &HashSet<(String, i64)>,
) -> Result<Result<Value, RecordFailure>, ServerError> {
    let name = def.name.as_str();
    let guess_client_id = rec.get(&def.client_id_field).and_then(Value::as_i64);
    let guess_id = rec.get(&def.id_field).and_then(Value::as_i64);
    let failure = |code: i64, field: Option<&str>, message: String| RecordFailure {
        entity: name.to_string(),
        client_id: guess_client_id,
        id: guess_id,
        field: field.map(str::to_string),
        code,
        message,
        server_record: None,
    };
    let fail = |code: i64,
                field: Option<&str>,
                message: String|
     -> Result<Result<Value, RecordFailure>, ServerError> {
        Ok(Err(failure(code, field, message)))
    };
    let Some(obj) = rec.as_object() else {
        return fail(
            CODE_VALIDATION,
            None,
            format!("a record of `{name}` must be a JSON object"),
        );
    };

    let mut int_fields: Vec<&str> = vec![&def.id_field, &def.client_id_field, "rowVersion"];
    if let Some(link) = &def.parent {
        int_fields.push(&link.id_field);
        int_fields.push(&link.client_id_field);
    }
    for (holders, field, client_field, _, _) in REFERENCES {
        if holders.contains(&name) {
            int_fields.push(field);
            int_fields.push(client_field);
        }
    }
    for field in &int_fields {
        if int_field(obj, field).is_err() {
            return fail(
                CODE_VALIDATION,
                Some(field),
                format!("`{field}` must be an integer or null"),
            );
        }
    }
    let id = int_field(obj, &def.id_field).ok().flatten();
    let client_id = nonzero(int_field(obj, &def.client_id_field).ok().flatten());
    let sent_rv = int_field(obj, "rowVersion").ok().flatten();
    let deleted = match obj.get("deleted") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            return fail(
                CODE_VALIDATION,
                Some("deleted"),
                format!("`deleted` must be a boolean, got {v}"),
            )
        }
    };

    // Which stored record this is, if any.
    let existing = if let Some(id) = id {
        match store::get(tx, name, id)? {
            Some(row) => Some((id, row, true)),
            None => {
                return fail(
                    CODE_INTEGRITY,
                    Some(&def.id_field),
                    format!("unknown {} {id}", def.id_field),
                )
            }
        }
    } else if let Some(cid) = client_id {
        match store::id_for_client(tx, name, cid)? {
            Some(known) => store::get(tx, name, known)?.map(|row| (known, row, false)),
            None => None,
        }
    } else {
        return fail(
            CODE_VALIDATION,
            Some(&def.client_id_field),
            format!("a new record of `{name}` needs `{}`", def.client_id_field),
        );
    };
    if let (Some((id, row, _)), Some(cid)) = (&existing, client_id) {
        let foreign = match row.client_id {
            Some(stored) => stored != cid,
            None => store::id_for_client(tx, name, cid)?.is_some_and(|o| o != *id),
        };
        if foreign {
            return fail(
                CODE_VALIDATION,
                Some(&def.client_id_field),
                format!(
                    "{} {cid} does not belong to {} {id}",
                    def.client_id_field, def.id_field
                ),
            );
        }
    }
    if let (Some((_, row, true)), Some(rv)) = (&existing, sent_rv) {
        if rv < row.row_version {
            let mut f = failure(
                CODE_CONFLICT,
                Some("rowVersion"),
                format!(
                    "conflict: rowVersion {rv} is older than the server's {}",
                    row.row_version
                ),
            );
            f.server_record = Some(row.value());
            return Ok(Err(f));
        }
    }
    let is_create = existing.is_none();

    // Business rules.
    if name == "products" || name == "persons" {
        match obj.get("name") {
            None if !is_create => {}
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => {
                return fail(
                    CODE_VALIDATION,
                    Some("name"),
                    format!("a record of `{name}` needs a non-empty `name`"),
                )
            }
        }
    }
    if let Some(q) = obj.get("quantity").filter(|v| !v.is_null()) {
        if !q.as_f64().is_some_and(|x| x > 0.0) {
            return fail(
                CODE_VALIDATION,
                Some("quantity"),
                format!("`quantity` must be a number greater than 0, got {q}"),
            );
        }
    }
    for field in ["price", "unitPrice", "amount", "totalAmount"] {
        if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
            if !v.as_f64().is_some_and(|x| x >= 0.0) {
                return fail(
                    CODE_VALIDATION,
                    Some(field),
                    format!("`{field}` must be a number >= 0, got {v}"),
                );
            }
        }
    }

    let stored = existing.as_ref().map(|(_, row, _)| row.object());
    let mut merged = stored.clone().unwrap_or_default();
    for (k, v) in obj {
        if k == "deleted" && v.is_null() {
            continue;
        }
        merged.insert(k.clone(), v.clone());
    }
    let will_be_deleted = deleted.unwrap_or_else(|| {
        stored
            .as_ref()
            .and_then(|s| s.get("deleted"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    });

    // Parent link.
    if let Some(link) = &def.parent {
        let pid = int_field(obj, &link.id_field).ok().flatten();
        let pcid = nonzero(int_field(obj, &link.client_id_field).ok().flatten());
        let resolved = if let Some(pid) = pid {
            Some((pid, link.id_field.as_str()))
        } else if let Some(pcid) = pcid {
            match store::id_for_client(tx, &link.collection, pcid)? {
                Some(p) => Some((p, link.client_id_field.as_str())),
                None => {
                    let why = if failed.contains(&(link.collection.clone(), pcid)) {
                        "failed in this request"
                    } else {
                        "is unknown"
                    };
                    return fail(
                        CODE_INTEGRITY,
                        Some(&link.client_id_field),
                        format!("parent {} {pcid} {why}", link.client_id_field),
                    );
                }
            }
        } else if is_create {
            return fail(
                CODE_INTEGRITY,
                Some(&link.id_field),
                format!(
                    "a new record of `{name}` needs `{}` or `{}`",
                    link.id_field, link.client_id_field
                ),
            );
        } else {
            None
        };
        if let Some((pid, field)) = resolved {
            match store::get(tx, &link.collection, pid)? {
                None => {
                    return fail(
                        CODE_INTEGRITY,
                        Some(field),
                        format!("unknown parent {} {pid}", link.id_field),
                    )
                }
                Some(p) if p.deleted && !will_be_deleted => {
                    return fail(
                        CODE_INTEGRITY,
                        Some(field),
                        format!("parent {} {pid} is deleted", link.id_field),
                    )
                }
                Some(_) => {
                    merged.insert(link.id_field.clone(), Value::from(pid));
                }
            }
        }
    }

    // Other references (customer, product).
    for (holders, field, client_field, target, must_live) in REFERENCES {
        if !holders.contains(&name) {
            continue;
        }
        let sent = int_field(obj, field).ok().flatten();
        let sent_client = nonzero(int_field(obj, client_field).ok().flatten());
        let (rid, via) = match (sent, sent_client) {
            (Some(r), _) => (r, *field),
            (None, Some(c)) => match store::id_for_client(tx, target, c)? {
                Some(r) => (r, *client_field),
                None => {
                    return fail(
                        CODE_INTEGRITY,
                        Some(client_field),
                        format!("unknown {client_field} {c}"),
                    )
                }
            },
            (None, None) => continue,
        };
        let unchanged = stored
            .as_ref()
            .and_then(|s| s.get(*field))
            .and_then(Value::as_i64)
            == Some(rid);
        if !unchanged || via == *client_field {
            match store::get(tx, target, rid)? {
                None => return fail(CODE_INTEGRITY, Some(via), format!("unknown {field} {rid}")),
                Some(t) if *must_live && t.deleted && !unchanged => {
                    return fail(
                        CODE_INTEGRITY,
                        Some(via),
                        format!("{field} {rid} is deleted"),
                    )
                }
                Some(_) => {}
            }
        }
        merged.insert(field.to_string(), Value::from(rid));
    }

    // Apply.
    *counter += 1;
    let rv = *counter;
    let (id, stored_client_id) = match &existing {
        Some((id, row, _)) => (*id, client_id.or(row.client_id)),
        None => (store::next_id(tx, name)?, client_id),
    };
    store::write(tx, def, id, stored_client_id, rv, merged)?;
    let mut entry = Map::new();
    entry.insert(
        def.client_id_field.clone(),
        stored_client_id.map_or(Value::Null, Value::from),
    );
    entry.insert(def.id_field.clone(), Value::from(id));
    entry.insert("rowVersion".to_string(), Value::from(rv));
    Ok(Ok(Value::Object(entry)))
}
