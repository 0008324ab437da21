//! The real server's dialect (`docs/WIRE.md`), with its habits: MD5 login
//! answering `Data.UserToken` (a JWT whose `exp` is the only expiry) and the
//! session, `GetAllData` by `from<Entity>Version` with every collection in
//! `Data.Objects` (`null` not asked, `[]` unchanged) and no `hasMore`, and
//! `SaveAllData` applied record by record (partial), answering one `Results`
//! entry per record. Request keys bind without regard to case; answers are
//! PascalCase. Records are stored camelCase, as in the documented dialect, so
//! both share the store and the admin API.

use std::collections::HashMap;

use md5::{Digest, Md5};
use rusqlite::{Connection, TransactionBehavior};
use serde_json::{json, Map, Value};

use crate::error::ServerError;
use crate::handler::{as_int, field, Reply};
use crate::schema::{pascal_keys, upper_first, Coll, MahakSchema};
use crate::store;
use crate::{RefServer, RequestLog};

/// The real server's words for a resent create: "this record was already
/// registered and cannot be edited".
pub const ALREADY_REGISTERED: &str = "این رکورد قبلا ثبت شده است و امکان ویرایش آن وجود ندارد";

/// The real server's words for an order line that names no product detail,
/// income or expense (with its trailing space).
pub const LINE_NEEDS_DETAIL: &str = "ProductDetailId or IncomeId or ExpenseId is required ";

/// The first row version of a mahak store: real values exceed 2^32.
pub const FIRST_ROW_VERSION: i64 = (1 << 32) + 3_849_910_000;

/// `{"Result": true, "Data": <data>}`.
pub(crate) fn ok_raw(data: &str) -> Reply {
    Reply::json(
        200,
        None,
        "ok",
        format!("{{\"Result\":true,\"Data\":{data}}}"),
    )
}

/// `{"Result": false, "Message": ...}` under `status` (200 for business
/// failures, as the real server answers them).
pub(crate) fn fail(status: u16, message: &str) -> Reply {
    let body = json!({"Result": false, "Message": message, "Data": null});
    Reply::json(
        status,
        None,
        format!("refused: {message}"),
        body.to_string(),
    )
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The password a login carried, against the user's: its MD5, or the
/// password itself on a server that takes it plain (where the MD5 is
/// refused).
fn password_matches(sent: &str, password: &str, plain: bool) -> bool {
    if plain {
        sent == password
    } else {
        sent.eq_ignore_ascii_case(&md5_hex(password))
    }
}

/// The server's clock as the real server writes it: Tehran time, no
/// offset, 7 fractional digits.
pub(crate) fn tehran_now() -> String {
    tehran_time(0)
}

/// Tehran wall time `offset_seconds` away from now, as [`tehran_now`].
pub(crate) fn tehran_time(offset_seconds: i64) -> String {
    let t = chrono::Utc::now()
        + chrono::Duration::seconds(3 * 3600 + 1800)
        + chrono::Duration::seconds(offset_seconds.clamp(-10 * 365 * 86_400, 10 * 365 * 86_400));
    format!("{}0", t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// Answers a login.
pub(crate) fn login(server: &RefServer, body: &[u8]) -> Reply {
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        _ => return fail(200, "the body must be a JSON object"),
    };
    let config = server.config();
    let database_id = as_int(field(&obj, "databaseId"));
    let package = field(&obj, "packageNo").and_then(|v| match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    if database_id != Some(config.database_id)
        || package.as_deref() != Some(config.package_number.to_string().as_str())
    {
        return fail(200, "اطلاعات پایگاه داده نامعتبر است");
    }
    let user = field(&obj, "userName").and_then(Value::as_str);
    let hash = field(&obj, "password").and_then(Value::as_str);
    let Some(user) = user.filter(|u| {
        config.users.iter().any(|(n, p)| {
            n == u && hash.is_some_and(|h| password_matches(h, p, config.plain_passwords))
        })
    }) else {
        return fail(200, "نام کاربری یا رمز عبور اشتباه است");
    };
    let session = server.session_ids();
    match crate::auth::issue(
        &config.jwt_secret,
        user,
        config.token_ttl,
        server.next_seq(),
    ) {
        Ok(t) => {
            let mut data = json!({
                "UserToken": t.token,
                "SyncId": config.sync_id,
                "VisitorId": server.visitor_of(user),
                "DatabaseId": session.0,
                "ErrorCode": 0,
                "ErrorMessage": null,
                "UserTitle": config.user_title,
                "MahakId": format!("M{}", config.database_id),
                "ServerTime": tehran_time(config.clock_offset_seconds),
                "PackageNo": config.package_number.to_string(),
                "CreditDay": 30,
                "HasRadara": false,
                "WithDataTransfer": true,
            });
            if config.omit_server_time {
                if let Some(o) = data.as_object_mut() {
                    o.remove("ServerTime");
                }
            }
            ok_raw(&data.to_string())
        }
        Err(e) => fail(500, &format!("cannot sign a token: {e}")),
    }
}

// ----- pull -------------------------------------------------------------------

/// Answers a `GetAllData` body.
pub(crate) fn pull(
    server: &RefServer,
    schema: &MahakSchema,
    body: &[u8],
    entry: &mut RequestLog,
) -> Result<Reply, ServerError> {
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        _ => return Ok(fail(200, "the body must be a JSON object")),
    };
    let config = server.config();
    let mut page_size: Option<usize> = None;
    let mut wanted: HashMap<&str, i64> = HashMap::new();
    let mut order_types: Option<Vec<i64>> = None;
    for (key, v) in &obj {
        let lower = key.to_ascii_lowercase();
        if lower == "pagesize" {
            page_size = as_int(Some(v))
                .filter(|&n| n > 0)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        } else if lower == "ordertypes" {
            order_types = v
                .as_array()
                .map(|a| a.iter().filter_map(|t| as_int(Some(t))).collect());
        } else if let Some(name) = schema.pull_keys.get(&lower) {
            // Unknown keys are ignored silently, as the real server does.
            wanted.insert(name.as_str(), as_int(Some(v)).unwrap_or(0).max(0));
        }
    }
    let mut cap = if config.ignore_page_size {
        None
    } else {
        page_size.map(|p| p.min(config.max_page_size))
    };
    if let Some(own) = config.server_page_cap {
        cap = Some(cap.map_or(own, |c| c.min(own)));
    }
    let mut total_left = if config.page_cap_total { cap } else { None };
    let mut rng = fastrand::Rng::with_seed(config.seed ^ server.next_seq());
    let mut db = server.db();
    let tx = db.transaction()?;
    let mut out = String::with_capacity(1024);
    match config.pull_objects {
        crate::PullObjects::Normal => {}
        crate::PullObjects::NullData => return Ok(ok_raw("null")),
        crate::PullObjects::NullObjects => return Ok(ok_raw("{\"Objects\":null}")),
        crate::PullObjects::Missing => return Ok(ok_raw("{\"Count\":0}")),
    }
    out.push_str("{\"Objects\":{");
    let mut counts = Vec::new();
    // Pages are read parents first, so a total cap starves children first.
    let mut pages: HashMap<&str, Vec<String>> = HashMap::new();
    for def in &schema.collections {
        let Some(&from) = wanted.get(def.name.as_str()) else {
            continue;
        };
        let limit = if config.page_cap_total {
            total_left
        } else {
            cap
        };
        let after = if config.exclusive_lower_bound {
            from
        } else {
            from.saturating_sub(1)
        };
        // `orderTypes` filters orders before the page is cut, so a page of
        // other types never hides the wanted ones.
        let types = order_types.as_deref().filter(|_| def.name == "orders");
        let mut records = read_records(&tx, &def.name, after, limit, types)?;
        if config.unordered {
            rng.shuffle(&mut records);
        }
        if let Some(left) = total_left.as_mut() {
            *left = left.saturating_sub(records.len());
        }
        counts.push((def.name.clone(), records.len()));
        pages.insert(def.name.as_str(), records);
    }
    tx.commit()?;
    for (i, (name, shown)) in schema.pull_names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(shown)?);
        out.push(':');
        match pages.get(name.as_str()) {
            None => out.push_str("null"),
            Some(records) => {
                out.push('[');
                let versionless = config.versionless.iter().any(|c| c == name);
                for (j, r) in records.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    if versionless {
                        let mut v: Value = serde_json::from_str(r)?;
                        if let Some(o) = v.as_object_mut() {
                            o.remove("rowVersion");
                        }
                        pascal_keys(&v.to_string(), &mut out);
                    } else {
                        pascal_keys(r, &mut out);
                    }
                    if config.duplicate_pulled_keys {
                        repeat_a_field(r, &mut out)?;
                    }
                }
                out.push(']');
            }
        }
    }
    out.push_str("}}");
    entry.counts = counts;
    Ok(ok_raw(&out))
}

/// Gives the record just written at the end of `out` one of its ordinary
/// fields (not an id, a version or `deleted`) a second time, with the same
/// value: `{..., "Name": "x"}` becomes `{..., "Name": "x", "Name": "x"}`.
fn repeat_a_field(stored: &str, out: &mut String) -> Result<(), ServerError> {
    let v: Value = serde_json::from_str(stored)?;
    let Some(obj) = v.as_object() else {
        return Ok(());
    };
    let ordinary = obj
        .iter()
        .find(|(k, _)| !(k.ends_with("Id") || k.ends_with("Version") || k.as_str() == "deleted"));
    if let (Some((k, v)), Some(b'}')) = (ordinary, out.as_bytes().last()) {
        out.pop();
        out.push(',');
        out.push_str(&serde_json::to_string(&upper_first(k))?);
        out.push(':');
        out.push_str(&v.to_string());
        out.push('}');
    }
    Ok(())
}

/// The stored texts of `collection` above `after`, ascending, at most
/// `limit`; only those whose `orderType` is in `types`, when given.
fn read_records(
    c: &Connection,
    collection: &str,
    after: i64,
    limit: Option<usize>,
    types: Option<&[i64]>,
) -> Result<Vec<String>, ServerError> {
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let rows = match types {
        None => {
            let mut st = c.prepare_cached(
                "SELECT body FROM records WHERE collection = ?1 AND row_version > ?2
                 ORDER BY row_version LIMIT ?3",
            )?;
            let rows = st.query_map(rusqlite::params![collection, after, limit], |r| {
                r.get::<_, String>(0)
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        }
        Some(types) => {
            let list = serde_json::to_string(types)?;
            let mut st = c.prepare_cached(
                "SELECT body FROM records WHERE collection = ?1 AND row_version > ?2
                 AND json_extract(body, '$.orderType') IN (SELECT value FROM json_each(?4))
                 ORDER BY row_version LIMIT ?3",
            )?;
            let rows = st.query_map(rusqlite::params![collection, after, limit, list], |r| {
                r.get::<_, String>(0)
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        }
    };
    Ok(rows)
}

// ----- save -------------------------------------------------------------------

/// A record's keys with a lowercase first letter (the store's naming).
fn camel(obj: &Map<String, Value>) -> Map<String, Value> {
    obj.iter()
        .map(|(k, v)| {
            let mut c = k.chars();
            let key = match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            };
            (key, v.clone())
        })
        .collect()
}

fn nonzero(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x != 0)
}

/// One record's refusal: `(Property, Error)`.
type Refusal = (String, String);

/// Answers a `SaveAllData` body: each record saved or refused on its own.
pub(crate) fn save(
    server: &RefServer,
    schema: &MahakSchema,
    body: &[u8],
    user: &str,
    entry: &mut RequestLog,
) -> Result<Reply, ServerError> {
    let visitor = server.visitor_of(user);
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        _ => return Ok(fail(200, "the body must be a JSON object of collections")),
    };
    let config = server.config();
    // The sent arrays, by collection (keys without regard to case).
    let mut sent: HashMap<&str, &Vec<Value>> = HashMap::new();
    for (key, v) in &obj {
        let Some(def) = schema.find(key) else {
            continue;
        };
        let Some(list) = v.as_array() else {
            return Ok(fail(200, &format!("`{key}` must be a list of records")));
        };
        if list.len() > config.max_records_per_save {
            return Ok(fail(
                200,
                &format!(
                    "too many records in `{key}`: {} (at most {})",
                    list.len(),
                    config.max_records_per_save
                ),
            ));
        }
        sent.insert(def.name.as_str(), list);
    }
    entry.counts = sent.iter().map(|(k, v)| (k.to_string(), v.len())).collect();
    let mut db = server.db();
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut counter = store::counter(&tx)?;
    let mut results: HashMap<&str, Vec<Value>> = HashMap::new();
    let mut all_ok = true;
    for def in &schema.collections {
        let Some(list) = sent.get(def.name.as_str()) else {
            continue;
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, rec) in list.iter().enumerate() {
            let index = i + 1;
            match save_one(&tx, def, rec, &mut counter, &config)? {
                Ok((id, client_id, code, rv)) => {
                    server.book(&def.name, id, visitor);
                    let mut r = json!({"Result": true, "Index": index, "EntityId": id,
                        "EntityClientId": client_id, "RowVersion": rv});

                    if let Some(code) = code {
                        r["EntityCode"] = code;
                    }
                    out.push(r);
                }
                Err((property, error)) => {
                    all_ok = false;
                    out.push(json!({"Result": false, "Index": index,
                        "Errors": [{"Property": property, "Error": error}]}));
                }
            }
        }
        if config.repeat_save_index {
            // A hostile answer: every result names the first record, and
            // none by its client id.
            for r in &mut out {
                if let Some(o) = r.as_object_mut() {
                    o.insert("Index".into(), json!(1));
                    o.remove("EntityClientId");
                }
            }
        }
        results.insert(def.name.as_str(), out);
    }
    store::set_counter(&tx, counter)?;
    tx.commit()?;
    let mut objects = Map::new();
    for (name, shown) in &schema.save_names {
        let list = results.remove(name.as_str()).unwrap_or_default();
        objects.insert(shown.clone(), json!({"Results": list}));
    }
    // Collections the Swagger's answer model does not list, if sent.
    for (name, list) in results {
        objects.insert(upper_first(name), json!({"Results": list}));
    }
    if config.refuse_saves_after_apply {
        // A hostile answer: applied, yet refused as a whole, with no word
        // on any record.
        return Ok(fail(200, "خطا در ذخیره اطلاعات"));
    }
    let body = json!({"Result": all_ok, "Data": {"Objects": objects}});
    let outcome = if all_ok { "ok" } else { "partly refused" };
    Ok(Reply::json(200, None, outcome, body.to_string()))
}

/// Saves one record; `Err` is its refusal, in the real server's words.
#[allow(clippy::type_complexity)]
fn save_one(
    tx: &Connection,
    def: &Coll,
    rec: &Value,
    counter: &mut i64,
    config: &crate::ServerConfig,
) -> Result<Result<(i64, i64, Option<Value>, i64), Refusal>, ServerError> {
    let name = def.name.as_str();
    let pascal = |f: &str| upper_first(f);
    let refuse = |field: &str, text: String| Ok(Err((upper_first(field), text)));
    let Some(obj) = rec.as_object() else {
        return refuse("record", "a record must be a JSON object".into());
    };
    if def.read_only {
        return refuse(&def.id_field, format!("`{name}` cannot be written"));
    }
    let obj = camel(obj);
    let int = |f: &str| as_int(obj.get(f));
    let id = nonzero(int(&def.id_field));
    let client_id = nonzero(int(&def.client_id_field));
    // Which stored record this is.
    let mut existing = match id {
        Some(id) => match store::get(tx, name, id)? {
            Some(row) => Some((id, row)),
            None => {
                return refuse(
                    &def.id_field,
                    format!("{} {id} not found", pascal(&def.id_field)),
                )
            }
        },
        None => None,
    };
    if existing.is_none() {
        if let Some(cid) = client_id {
            if let Some(known) = store::id_for_client(tx, name, cid)? {
                if !config.resend_updates {
                    return refuse(&def.id_field, ALREADY_REGISTERED.to_string());
                }
                existing = store::get(tx, name, known)?.map(|row| (known, row));
            }
        }
    }
    let is_create = existing.is_none();
    // A habit the evidence leaves open: dates with an offset refused.
    if config.refuse_offset_dates {
        for (k, v) in &obj {
            // Only the fields the server types as dates: text is text.
            let date_field = k.eq_ignore_ascii_case("date") || k.ends_with("Date");
            let offset = date_field
                && v.as_str()
                    .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).is_ok());
            if offset {
                return refuse(
                    k,
                    format!(
                        "The value '{}' is not valid for {}.",
                        v.as_str().unwrap_or(""),
                        pascal(k)
                    ),
                );
            }
        }
    }
    // The real server's own rule on order lines.
    if name == "orderDetails" && is_create {
        let named = ["productDetail", "income", "expense"].iter().any(|k| {
            nonzero(int(&format!("{k}Id"))).is_some()
                || nonzero(int(&format!("{k}ClientId"))).is_some()
        });
        if !named {
            return Ok(Err((
                "IncomeId,ExpenseId,ProductDetailId".to_string(),
                LINE_NEEDS_DETAIL.to_string(),
            )));
        }
    }
    let mut merged = existing
        .as_ref()
        .map(|(_, row)| row.object())
        .unwrap_or_default();
    for (k, v) in &obj {
        if k == "deleted" && v.is_null() {
            continue;
        }
        merged.insert(k.clone(), v.clone());
    }
    // Parent links: by server id (must exist), or by client id (saved in
    // this request or before). Either refusal names `<Parent>Id`. A link
    // left out is not required (the evidence requires none but the line's).
    for link in &def.links {
        let pid = nonzero(int(&link.id_field));
        let pcid = nonzero(int(&link.client_id_field));
        let resolved = match (pid, pcid) {
            (Some(pid), _) => {
                if store::get(tx, &link.collection, pid)?.is_none() {
                    return refuse(
                        &link.id_field,
                        format!("{} {pid} not found", pascal(&link.id_field)),
                    );
                }
                Some(pid)
            }
            (None, Some(pcid)) => match store::id_for_client(tx, &link.collection, pcid)? {
                Some(p) => Some(p),
                None => {
                    return refuse(
                        &link.id_field,
                        format!("{} {pcid} not found", pascal(&link.client_id_field)),
                    )
                }
            },
            (None, None) => None,
        };
        if let Some(p) = resolved {
            merged.insert(link.id_field.clone(), Value::from(p));
        }
    }
    *counter += 1;
    let rv = *counter;
    let (id, stored_client) = match &existing {
        Some((id, row)) => (*id, client_id.or(row.client_id)),
        None => (store::next_id(tx, name)?.max(1_000), client_id),
    };
    crate::admin::stamp(&mut merged, rv, config.sync_id);
    merged
        .entry(def.client_id_field.clone())
        .or_insert(Value::from(0));
    let stored = store::write(tx, def, id, stored_client, rv, merged)?;
    let code = def.code_field.as_ref().and_then(|c| stored.get(c).cloned());
    Ok(Ok((id, stored_client.unwrap_or(0), code, rv)))
}
