//! The documented dialect (`docs/PROTOCOL.md`): `LoginV2`, `GetAllDataV2`
//! with `<collection>RowVersion` keys and `{rowVersion, hasMore, records}`
//! entries (a pull asks again for what says `hasMore`), `SaveAllDataV2`
//! that is all-or-nothing, idempotent by client id and answers the saved
//! records' ids, and task calls deduplicated by their `requestId`.
//! camelCase on both sides.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::codec::{
    by_collection, check_pulled, protocol, Change, Codec, Endpoints, LoginAnswer, NextAsk, Pager,
    PullAsk, PulledCollection, RefusalScope, SaveAnswer, SaveOutcome, SaveRules, TaskEndpoint,
    TaskRequest,
};
use super::login::{jwt_expiry, login_data, parse_expire_date};
use super::tasks::{json_request, multipart};
use crate::api::call::CallKind;
use crate::api::config::{ClientConfig, Credentials, LOGIN_ENDPOINT};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::{Error, Result};
use crate::record::{self, JsonKey};
use crate::tasks::{OrderDisputeItem, RecordDisputeItem};

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
        let mut memo = record::KeyMemo::new();
        for (i, rec) in entry.records.iter().flatten().enumerate() {
            let text = rec.get();
            let meta = record::scan_with(def, text, &mut memo)
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

// ----- the codec ------------------------------------------------------------

/// The documented dialect's codec.
pub(crate) struct Documented;

#[derive(serde::Serialize)]
struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
    #[serde(rename = "databaseId")]
    database_id: i64,
    #[serde(rename = "packageNumber")]
    package_number: i64,
}

impl Codec for Documented {
    fn endpoints(&self) -> Endpoints {
        Endpoints {
            login: LOGIN_ENDPOINT.into(),
            pull: "GetAllDataV2".into(),
            save: "SaveAllDataV2".into(),
            order_dispute: "SolveOrderDispute".into(),
            dispute: "SolveDispute".into(),
            upload: "Upload".into(),
        }
    }

    /// The server keeps `(collection, clientId) -> id`: a resent create is
    /// an update, never a second record.
    fn idempotent_save(&self) -> bool {
        true
    }

    fn login_body(&self, credentials: &Credentials, _config: &ClientConfig) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&LoginRequest {
            username: &credentials.username,
            password: &credentials.password,
            database_id: credentials.database_id,
            package_number: credentials.package_number,
        })?)
    }

    /// `{token, expireDate}`, in the envelope's `data` or bare.
    fn read_login(
        &self,
        status: u16,
        body: &[u8],
        tracking_id: Option<String>,
    ) -> Result<Option<LoginAnswer>> {
        let Some(login) = login_data(status, body, tracking_id, false)? else {
            return Ok(None);
        };
        Ok(Some(LoginAnswer {
            server_time: login.server_time.as_deref().and_then(parse_expire_date),
            expires: login
                .expire_date
                .as_deref()
                .and_then(parse_expire_date)
                .or_else(|| jwt_expiry(&login.token)),
            max_age: None,
            session: None,
            token: login.token,
        }))
    }

    /// 1001 (database) and 1002 (user or password).
    fn login_refusal_sticks(&self, code: i64) -> bool {
        matches!(code, 1001 | 1002)
    }

    fn pager(&self, page_size: u32, _inclusive_bound: bool) -> Box<dyn Pager> {
        Box::new(HasMore { page_size })
    }

    fn pull_body(&self, ask: &PullAsk<'_>) -> Result<Vec<u8>> {
        let mut body = Map::new();
        for (def, from) in ask.wanted {
            body.insert(def.checkpoint_field(), Value::from(*from));
        }
        if ask.page_size > 0 {
            body.insert("pageSize".into(), Value::from(ask.page_size));
        }
        Ok(serde_json::to_vec(&body)?)
    }

    fn parse_pull<'a>(
        &self,
        catalogue: &'a Catalogue,
        wanted: &'a [String],
        data: &'a str,
        tracking_id: Option<&str>,
    ) -> Result<Vec<PulledCollection<'a>>> {
        parse_pull(catalogue, wanted, data, tracking_id)
    }

    fn save_body(&self, catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>> {
        save_body(catalogue, changes)
    }

    fn parse_save(
        &self,
        catalogue: &Catalogue,
        changes: &[&Change],
        data: &RawValue,
        _rules: &SaveRules,
        tracking_id: Option<&str>,
    ) -> Result<SaveAnswer> {
        parse_save(catalogue, changes, data, tracking_id)
    }

    /// Referential integrity (2001) and validation (3001) name a culprit;
    /// any other code means the request was found malformed (a bug on our
    /// side).
    fn refusal_scope(&self, code: i64) -> RefusalScope {
        match code {
            2001 | 3001 => RefusalScope::Isolate,
            _ => RefusalScope::WholeBatch,
        }
    }

    fn check_order_dispute(&self, item: &OrderDisputeItem) -> Result<()> {
        if !matches!(item.resolution.as_str(), "accept" | "reject" | "adjust") {
            return Err(Error::invalid(
                "orders",
                "resolution",
                format!(
                    "`{}`: one of accept, reject or adjust",
                    item.resolution.escape_debug()
                ),
            ));
        }
        Ok(())
    }

    fn order_disputes_per_request(&self) -> usize {
        1
    }

    fn disputes_per_request(&self) -> usize {
        1
    }

    /// Deduplicated by its `requestId`.
    fn resend_dispute_in_doubt(&self) -> bool {
        true
    }

    fn task_answers_known(&self) -> bool {
        true
    }

    /// One order per request, with its `requestId`.
    fn order_dispute_request(
        &self,
        _database_id: i64,
        request_id: &str,
        items: &[OrderDisputeItem],
    ) -> Result<TaskRequest> {
        let [item] = items else {
            return Err(Error::Config(format!(
                "a documented SolveOrderDispute names one order, not {}",
                items.len()
            )));
        };
        let body = json!({
            "orderId": item.order_id,
            "resolution": item.resolution,
            "reason": item.reason,
            "amount": item.amount,
            "requestId": request_id,
        });
        json_request(TaskEndpoint::OrderDispute, &body, CallKind::Idempotent)
    }

    /// One record per request, with its `requestId`.
    fn dispute_request(
        &self,
        _database_id: i64,
        def: &CollectionDef,
        request_id: &str,
        items: &[RecordDisputeItem],
    ) -> Result<TaskRequest> {
        let [item] = items else {
            return Err(Error::Config(format!(
                "a documented SolveDispute names one record, not {}",
                items.len()
            )));
        };
        let body = json!({
            "entity": def.name,
            "id": item.id,
            "rowVersion": item.row_version,
            "resolution": item.resolution,
            "reason": item.reason,
            "requestId": request_id,
        });
        json_request(TaskEndpoint::Dispute, &body, CallKind::Idempotent)
    }

    /// `entity`, `id` and `file` fields.
    fn upload_request(
        &self,
        def: &CollectionDef,
        server_id: i64,
        file_name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<TaskRequest> {
        Ok(multipart(
            &[("entity", def.name.clone()), ("id", server_id.to_string())],
            Vec::new(),
            None,
            file_name,
            content_type,
            data,
        ))
    }
}

/// The documented paging: the collections whose entry says `hasMore` are
/// asked again, each from its new checkpoint.
struct HasMore {
    page_size: u32,
}

impl Pager for HasMore {
    fn page_size(&self) -> u32 {
        self.page_size
    }

    fn next(
        &mut self,
        entries: &mut Vec<PulledCollection<'_>>,
        checkpoint: &dyn Fn(&str) -> i64,
        _asked: &[String],
        tracking_id: Option<&str>,
    ) -> NextAsk {
        let mut next = Vec::new();
        for e in entries.iter().filter(|e| e.has_more) {
            let moved = e
                .checkpoint()
                .is_some_and(|cp| cp > checkpoint(&e.def.name));
            if !moved {
                return NextAsk::Fail(protocol(
                    Some(&e.def.name),
                    "the server says more records remain but sent none newer".into(),
                    tracking_id,
                ));
            }
            next.push(e.def.name.clone());
        }
        if next.is_empty() {
            NextAsk::Done
        } else {
            NextAsk::Again(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::dialect::parse_pull_sorted;

    /// A `hasMore` that brings nothing newer ends the pull with an error,
    /// once the page is applied; `hasMore` with news asks that collection
    /// again; none asks nothing.
    #[test]
    fn has_more_pages_and_refuses_a_page_that_does_not_move() {
        let cat = Catalogue::documented();
        let wanted = vec!["products".to_string(), "persons".to_string()];
        let mut pager = Documented.pager(2, true);
        assert_eq!(
            (pager.page_size(), pager.ask_from(7)),
            (2, 7),
            "no inclusive rule"
        );
        let page = r#"{"products":{"rowVersion":12,"hasMore":true,"records":[
            {"productId":1,"rowVersion":11},{"productId":2,"rowVersion":12}]},
            "persons":{"rowVersion":3,"hasMore":false,"records":[]}}"#;
        let mut entries =
            parse_pull_sorted(&Documented, &cat, &wanted, page, None).expect("parses");
        let zero = |_: &str| 0;
        assert!(matches!(
            pager.next(&mut entries, &zero, &wanted, None),
            NextAsk::Again(ref w) if *w == ["products"]
        ));
        let twelve = |_: &str| 12;
        assert!(matches!(
            pager.next(&mut entries, &twelve, &wanted, Some("t")),
            NextAsk::Fail(Error::Protocol { .. })
        ));
        let done = r#"{"products":{"rowVersion":12,"hasMore":false,"records":[]}}"#;
        let mut entries =
            parse_pull_sorted(&Documented, &cat, &wanted, done, None).expect("parses");
        assert!(matches!(
            pager.next(&mut entries, &twelve, &wanted, None),
            NextAsk::Done
        ));
    }

    /// What the codec says of a documented server's habits.
    #[test]
    fn the_documented_rules() {
        assert!(Documented.idempotent_save());
        assert!(Documented.resend_dispute_in_doubt());
        assert!(Documented.login_refusal_sticks(1002) && !Documented.login_refusal_sticks(1003));
        assert_eq!(Documented.refusal_scope(2001), RefusalScope::Isolate);
        assert_eq!(Documented.refusal_scope(400), RefusalScope::WholeBatch);
        let login = Documented
            .read_login(
                200,
                br#"{"token":"a.b.c","expireDate":"2026-12-06T00:00:00Z"}"#,
                None,
            )
            .expect("reads")
            .expect("a token");
        assert_eq!(login.token, "a.b.c");
        assert!(login.expires.is_some() && login.session.is_none() && login.max_age.is_none());
        let cat = Catalogue::documented();
        let ask = PullAsk {
            wanted: &[(cat.require("orders").expect("known"), 5)],
            page_size: 10,
            order_types: &[201],
        };
        let body: Value =
            serde_json::from_slice(&Documented.pull_body(&ask).expect("body")).expect("JSON");
        assert_eq!(
            body,
            json!({"ordersRowVersion": 5, "pageSize": 10}),
            "no order filter in this dialect"
        );
    }
}
